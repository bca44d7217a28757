"""
`SharedBudget`: one API key's creates and polls per second, shared through
PostgreSQL by every process that names the same database (and bucket).

Each limit is a token bucket row refilled on the database's clock. A take
is one `UPDATE ... RETURNING` that always takes its tokens, possibly into
debt: the tokens left say how long the taker waits before using them, so
the k-th token is granted no sooner than `(k - burst) / rate` seconds after
the bucket was full, whatever the number of processes, and nobody retries.
Creates take one token per `UPDATE`; polls take small blocks and hand them
out locally.

The rates given are ceilings, and the start: the shared rate adapts to the
key's real limit, for all processes at once. A process that meets a 429
reports it (`rate_limited`), and one `UPDATE` sets the shared rate just
under the tokens every process took since the last such cut, over the time
since (the server's bucket was empty at both 429s, so that is the key's
limit), or halves it the first time; from there the rate probes back up
towards the ceiling as `RateControl` does (`_watch/rate.py`: held for a
while, then growing faster and faster). Each process still paces its own
creates too (`CreatePacer`): the last defence, as is the SDK's 429 handling.

When the database cannot be reached, a process falls back to its share of
the rate (the rate divided by the processes seen alive lately, or the whole
rate when it never knew) in a local bucket, and tries the database again a
few seconds later. The SDK's 429 handling stays the last defence either
way. The API key is never stored: a bucket is named by `name` only.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import re
import uuid
from typing import TYPE_CHECKING, Any, Final, Protocol, runtime_checkable

from .._errors import ValidationError
from .._numbers import finite_number
from .._text import short_repr
from .._watch.rate import (
    DECREASE,
    HOLD_MAX_SECONDS,
    HOLD_REQUESTS,
    HOLD_SECONDS,
    MAX_GROWTH,
    MIN_GRANTS,
    PROBE,
    SIT,
)

if TYPE_CHECKING:
    import asyncpg

__all__ = ["Budget", "SharedBudget"]

logger = logging.getLogger("evolink_async")

#: A bucket holds a tenth of a second of tokens (at least one): enough for
#: timer jitter, and the server's own bucket, which holds more, never sees
#: a burst above the rate.
BURST_SECONDS: Final = 0.1
#: Poll tokens taken per database round trip, at most.
POLL_BLOCK: Final = 8
#: After a database failure, the local share is used this long before the
#: database is tried again.
RETRY_DATABASE: Final = 5.0
#: Seconds a database call may take before the local share takes over.
DATABASE_TIMEOUT: Final = 2.0
#: How often a process says it is alive, and how long that counts.
HEARTBEAT: Final = 5.0
ALIVE_FOR: Final = 20.0

_NAME: Final = re.compile(r"[A-Za-z0-9._:-]{1,100}")

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS evolink_budget (
    name text NOT NULL,
    kind text NOT NULL,
    rate double precision NOT NULL,
    burst double precision NOT NULL,
    tokens double precision NOT NULL,
    stamp double precision NOT NULL,
    PRIMARY KEY (name, kind)
);
CREATE TABLE IF NOT EXISTS evolink_budget_members (
    name text NOT NULL,
    member text NOT NULL,
    seen double precision NOT NULL,
    PRIMARY KEY (name, member)
);
ALTER TABLE evolink_budget ADD COLUMN IF NOT EXISTS ceiling double precision;
ALTER TABLE evolink_budget ADD COLUMN IF NOT EXISTS base double precision;
ALTER TABLE evolink_budget ADD COLUMN IF NOT EXISTS cut_at double precision;
ALTER TABLE evolink_budget ADD COLUMN IF NOT EXISTS granted double precision NOT NULL DEFAULT 0;
ALTER TABLE evolink_budget ADD COLUMN IF NOT EXISTS cut_granted double precision NOT NULL DEFAULT 0;
ALTER TABLE evolink_budget ADD COLUMN IF NOT EXISTS hold double precision NOT NULL DEFAULT 0;
"""
# `rate` is the ceiling given (kept for the rows of earlier versions);
# `base` the rate the last cut set, `cut_at` when (NULL: never), `hold` how
# long it holds before probing (0 after a blind cut), `granted` the tokens
# taken in all, `cut_granted` those taken by then.
_ENSURE: Final = """
INSERT INTO evolink_budget (name, kind, rate, burst, tokens, stamp, ceiling, base)
VALUES ($1, $2, $3, $4, $4, extract(epoch from clock_timestamp()), $3, $3)
ON CONFLICT (name, kind) DO UPDATE SET
    rate = excluded.rate, burst = excluded.burst, ceiling = excluded.ceiling,
    base = least(coalesce(evolink_budget.base, excluded.ceiling), excluded.ceiling)
"""
#: The shared rate now, in SQL over a row `b` and the time `now.t`: the
#: ceiling until a 429, then `RateControl`'s probe from the rate a cut set.
_RATE: Final = f"""
CASE WHEN b.cut_at IS NULL THEN b.ceiling ELSE least(b.ceiling, b.base * exp(least(
    {MAX_GROWTH}, {PROBE / 2} * power(greatest(0, now.t - b.cut_at - b.hold), 2))))
END"""
_NOW: Final = "WITH now AS (SELECT extract(epoch from clock_timestamp()) AS t)"
# Refill on the database clock at the shared rate, then take `$3` tokens,
# into debt if need be; the tokens left (negative: owed) tell the taker how
# long to wait.
_TAKE: Final = f"""
{_NOW}
UPDATE evolink_budget b
SET tokens = least(b.burst, b.tokens + greatest(0, now.t - b.stamp) * ({_RATE})) - $3,
    stamp = greatest(b.stamp, now.t),
    granted = b.granted + $3
FROM now
WHERE b.name = $1 AND b.kind = $2
RETURNING b.tokens, {_RATE}
"""  # noqa: S608 -- made of this module's numeric constants, no input
# A 429 met: a new cut once MIN_GRANTS tokens went out since the last one
# (sooner, the last cut has not had its effect yet). The tokens taken since
# the last cut over the time since, at SIT, held as `RateControl` holds a
# measured rate; the first time, with nothing to measure, the rate halved,
# probing at once. Never under `$3`.
_CUT: Final = f"""
{_NOW}, cut AS (
    SELECT b.name, b.kind, {_RATE} AS rate_now,
        CASE WHEN b.cut_at IS NOT NULL AND now.t > b.cut_at
            THEN {SIT} * (b.granted - b.cut_granted) / (now.t - b.cut_at) END AS measured
    FROM evolink_budget b, now
    WHERE b.name = $1 AND b.kind = $2
)
UPDATE evolink_budget b
SET base = greatest($3, CASE WHEN cut.measured IS NULL THEN cut.rate_now * {DECREASE}
        ELSE least(cut.rate_now, cut.measured) END),
    hold = CASE WHEN cut.measured IS NULL THEN 0 ELSE least({HOLD_MAX_SECONDS}, greatest(
        {HOLD_SECONDS}, {HOLD_REQUESTS} / greatest($3, least(cut.rate_now, cut.measured)))) END,
    cut_at = now.t,
    cut_granted = b.granted
FROM now, cut
WHERE b.name = cut.name AND b.kind = cut.kind
    AND (b.cut_at IS NULL OR b.granted - b.cut_granted >= {MIN_GRANTS})
RETURNING b.base
"""  # noqa: S608 -- made of this module's numeric constants, no input
#: A cut never takes the shared rate under this share of its ceiling.
FLOOR_SHARE: Final = 1 / 64
_HEARTBEAT: Final = """
INSERT INTO evolink_budget_members (name, member, seen)
VALUES ($1, $2, extract(epoch from clock_timestamp()))
ON CONFLICT (name, member) DO UPDATE SET seen = excluded.seen
"""
_ALIVE: Final = """
SELECT count(*) FROM evolink_budget_members
WHERE name = $1 AND seen > extract(epoch from clock_timestamp()) - $2
"""
_LEAVE: Final = "DELETE FROM evolink_budget_members WHERE name = $1 AND member = $2"


@runtime_checkable
class Budget(Protocol):
    """What a batch run asks before each create and each poll (`SharedBudget` is one)."""

    async def take_create(self) -> None:
        """Wait until this process may send one create."""
        ...

    def take_poll(self) -> bool:
        """Use one poll token held here; False when `refill_polls` must run first."""
        ...

    async def refill_polls(self) -> None:
        """Get more poll tokens, waiting until they may be used."""
        ...

    def rate_limited(self, kind: str) -> None:
        """A request of `kind` ("create", "poll") met a 429 (the rate may adapt to it)."""
        ...


def _check_rate(name: str, value: object, *, optional: bool) -> float | None:
    if value is None and optional:
        return None
    rate = finite_number(value)  # None for an int beyond the float range, too
    if rate is None or rate <= 0:
        raise ValidationError(f"{name}={short_repr(value)}: must be a finite number > 0")
    return rate


class _LocalBucket:
    """The fallback: a token bucket on this process's clock, at a rate set per take."""

    __slots__ = ("stamp", "tokens")

    def __init__(self) -> None:
        self.tokens = 0.0
        self.stamp: float | None = None

    def take(self, now: float, rate: float, count: int) -> float:
        """Take `count` tokens (into debt); the seconds to wait before using them."""
        burst = max(1.0, rate * BURST_SECONDS)
        if self.stamp is None:
            self.tokens, self.stamp = burst, now
        self.tokens = min(burst, self.tokens + max(0.0, now - self.stamp) * rate) - count
        self.stamp = max(self.stamp, now)
        return max(0.0, -self.tokens / rate)


class SharedBudget:
    """
    Creates and polls per second for one API key, shared across processes.

    Pass it to `client.batch(..., budget=budget)` in every process (on one
    machine or many) that uses the key: each create waits for a token, and
    the client's watcher draws its polls from the same budget while the run
    lasts. The buckets live in PostgreSQL (tables made on first use), so
    the sum over all processes stays within the rates. If the database is
    unreachable, each process uses its share (the rate over the processes
    seen alive lately, or the whole rate) until it is back. The SDK's 429
    handling remains the last defence.

    It connects lazily, in the event loop that first uses it, and is used
    from that loop only; close it with `await budget.aclose()` or use
    `async with budget:`. Needs the `postgres` extra
    (`pip install 'evolink-async[postgres]'`).

    Args:
        dsn: a `postgresql://` URL.
        creates_per_second: creates per second for the key, all processes
            together: where the shared rate starts, and its ceiling (429s
            lower it to the key's real limit, see the module's docstring).
        polls_per_second: poll requests per second, all processes together,
            likewise; None leaves polls to each client's own watcher.
        name: names the bucket, so several keys can share one database
            (never the key itself).
    """

    def __init__(
        self,
        dsn: str,
        *,
        creates_per_second: float,
        polls_per_second: float | None = None,
        name: str = "default",
    ) -> None:
        given: tuple[object, object] = (dsn, name)
        if not isinstance(given[0], str) or not dsn.startswith(("postgresql://", "postgres://")):
            raise ValidationError("dsn: must be a postgresql:// URL")
        if not isinstance(given[1], str) or not _NAME.fullmatch(name):
            raise ValidationError(f"name={short_repr(name)}: 1-100 characters of [A-Za-z0-9._:-]")
        self.creates_per_second = _check_rate(
            "creates_per_second", creates_per_second, optional=False
        )
        self.polls_per_second = _check_rate("polls_per_second", polls_per_second, optional=True)
        self.name = name
        self._dsn = dsn
        self._member = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self._connection: asyncpg.Connection[Any] | None = None
        self._lock: asyncio.Lock | None = None
        self._down_until = -math.inf
        self._next_heartbeat = -math.inf
        self._alive: int | None = None
        self._local = {"create": _LocalBucket(), "poll": _LocalBucket()}
        self._poll_tokens = 0
        self._closed = False
        #: Takes served from the local share because the database failed.
        self.fallbacks = 0
        #: The shared rate per kind ("create", "poll") at the last take.
        self.rates: dict[str, float] = {}
        #: 429s reported, and the cuts of the shared rate they made.
        self.reported = 0
        self.cuts = 0
        self._reports: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        # The DSN may hold a password: only the parts a log can show.
        return (
            f"SharedBudget(name={self.name!r}, creates_per_second={self.creates_per_second}, "
            f"polls_per_second={self.polls_per_second})"
        )

    async def __aenter__(self) -> SharedBudget:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Leave the members table and close the connection (the buckets stay)."""
        self._closed = True
        for report in list(self._reports):
            report.cancel()
        await asyncio.gather(*self._reports, return_exceptions=True)
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            await asyncio.wait_for(connection.execute(_LEAVE, self.name, self._member), 1.0)
        except Exception:  # leaving is a courtesy: the heartbeat lapses anyway
            logger.debug("shared budget: could not leave the members table", exc_info=True)
        finally:
            connection.terminate()

    # -- what the runner and the watcher call --------------------------------

    async def take_create(self) -> None:
        """Wait until this process may send one create."""
        assert self.creates_per_second is not None
        await asyncio.sleep(await self._take("create", self.creates_per_second, 1))

    def take_poll(self) -> bool:
        """Use one poll token held locally; False when `refill_polls` must run first."""
        if self.polls_per_second is None:
            return True
        if self._poll_tokens > 0:
            self._poll_tokens -= 1
            return True
        return False

    async def refill_polls(self) -> None:
        """Take a block of poll tokens from the shared bucket, waiting until they are due."""
        rate = self.polls_per_second
        if rate is None or self._poll_tokens > 0:
            return
        block = max(1, min(POLL_BLOCK, int(rate * BURST_SECONDS)))
        await asyncio.sleep(await self._take("poll", rate, block))
        self._poll_tokens += block

    def rate_limited(self, kind: str) -> None:
        """
        A request of `kind` ("create" or "poll") met a 429: lower the shared
        rate (in the background; a database that fails is only logged).
        """
        rate = self.creates_per_second if kind == "create" else self.polls_per_second
        loop = asyncio.get_running_loop()
        if rate is None or self._closed or loop.time() < self._down_until:
            return
        self.reported += 1
        task = loop.create_task(self._cut(kind, rate))
        self._reports.add(task)
        task.add_done_callback(self._reports.discard)

    async def _cut(self, kind: str, ceiling: float) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        try:
            async with self._lock:
                connection = await asyncio.wait_for(self._connect(), DATABASE_TIMEOUT)
                base = await asyncio.wait_for(
                    connection.fetchval(_CUT, self.name, kind, ceiling * FLOOR_SHARE),
                    DATABASE_TIMEOUT,
                )
        except Exception as exc:  # the next take finds a failing database too
            logger.debug("shared budget: could not lower the %s rate (%r)", kind, exc)
            return
        if base is not None:
            self.cuts += 1
            logger.info("shared budget: %s rate-limited (HTTP 429), shared rate %.3g/s", kind, base)

    # -- the buckets ------------------------------------------------------------

    async def _take(self, kind: str, rate: float, count: int) -> float:
        """Take `count` tokens of `kind`; the seconds to wait before using them."""
        if self._closed:
            raise RuntimeError("this SharedBudget is closed")
        loop = asyncio.get_running_loop()
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if loop.time() >= self._down_until:
                try:
                    return await asyncio.wait_for(
                        self._take_shared(kind, rate, count), DATABASE_TIMEOUT
                    )
                except (OSError, TimeoutError, ImportError) as exc:
                    self._database_failed(loop.time(), exc)
                except Exception as exc:
                    if not _is_database_error(exc):
                        raise
                    self._database_failed(loop.time(), exc)
            self.fallbacks += 1
            share = rate / self._alive if self._alive else rate
            return self._local[kind].take(loop.time(), share, count)

    def _database_failed(self, now: float, exc: BaseException) -> None:
        if self._down_until == -math.inf or now >= self._down_until:
            logger.warning(
                "shared budget: database unreachable (%s); using this process's share",
                type(exc).__name__,
            )
        self._down_until = now + RETRY_DATABASE
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.terminate()

    async def _take_shared(self, kind: str, rate: float, count: int) -> float:
        connection = await self._connect()
        loop_now = asyncio.get_running_loop().time()
        if loop_now >= self._next_heartbeat:
            await connection.execute(_HEARTBEAT, self.name, self._member)
            alive = await connection.fetchval(_ALIVE, self.name, ALIVE_FOR)
            self._alive = max(1, int(alive or 1))
            self._next_heartbeat = loop_now + HEARTBEAT
        row = await connection.fetchrow(_TAKE, self.name, kind, float(count))
        if row is None:
            await self._ensure(connection)
            row = await connection.fetchrow(_TAKE, self.name, kind, float(count))
            assert row is not None
        tokens, shared_rate = float(row[0]), float(row[1])
        self.rates[kind] = shared_rate
        return max(0.0, -tokens / shared_rate)

    async def _connect(self) -> asyncpg.Connection[Any]:
        if self._connection is not None and not self._connection.is_closed():
            return self._connection
        try:
            import asyncpg
        except ImportError:
            raise ImportError(
                "SharedBudget needs asyncpg: pip install 'evolink-async[postgres]'"
            ) from None
        connection: asyncpg.Connection[Any] = await asyncpg.connect(
            self._dsn, timeout=DATABASE_TIMEOUT
        )
        try:
            # Two processes making the tables at once would collide in the
            # catalog; the advisory lock makes them take turns.
            async with connection.transaction():
                await connection.execute("SELECT pg_advisory_xact_lock(7201020301)")
                await connection.execute(_SCHEMA)
            await self._ensure(connection)
        except BaseException:
            connection.terminate()
            raise
        self._connection = connection
        return connection

    async def _ensure(self, connection: asyncpg.Connection[Any]) -> None:
        """Make (or re-rate) this budget's rows; a rate given here wins for everyone."""
        assert self.creates_per_second is not None
        rates = [("create", self.creates_per_second), ("poll", self.polls_per_second)]
        for kind, rate in rates:
            if rate is not None:
                burst = max(1.0, rate * BURST_SECONDS)
                await connection.execute(_ENSURE, self.name, kind, rate, burst)


def _is_database_error(exc: BaseException) -> bool:
    """True for asyncpg's own errors (imported only when asyncpg is there)."""
    try:
        import asyncpg
    except ImportError:
        return False
    return isinstance(exc, asyncpg.PostgresError | asyncpg.InterfaceError)
