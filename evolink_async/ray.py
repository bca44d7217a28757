"""
Video generation as a Ray Data stage: `EvoLinkVideos` for `Dataset.map_batches`.

Each Ray actor holds one `EvoLinkClient` (one watcher, one session) for its
lifetime, made lazily in the event loop Ray runs the actor's async
`__call__` in, so several batches run at once on it. A batch's rows are job
dicts; its output rows are `JobOutcome.to_record()`. Every job's
Idempotency-Key is derived from (`run_id`, job id, request), so a batch that
Ray re-runs after its worker died re-attaches to the tasks already made
instead of paying for them again. Needs the `ray` extra
(`pip install 'evolink-async[ray]'`).
"""

from __future__ import annotations

import asyncio
import inspect
import math
import os
import time
from collections.abc import Mapping
from typing import Any, Final

try:
    import ray
except ImportError:  # pragma: no cover -- the message is the point
    raise ImportError("evolink_async.ray needs Ray: pip install 'evolink-async[ray]'") from None

from ._batch.jobs import JobOutcome
from ._batch.keys import check_run_id
from ._batch.shared_budget import SharedBudget
from ._client import EvoLinkClient
from ._errors import APIConnectionError, Problem, RateLimitError, ServerError, ValidationError
from ._numbers import finite_number

__all__ = ["EvoLinkVideos"]

#: Rounds of re-sending jobs that met only rate limits or transient errors
#: (Ray does not retry an application's errors; the keys make this safe).
_RETRY_ROUNDS: Final = 8
#: The longest pause between rounds, in seconds.
_MAX_ROUND_PAUSE: Final = 30.0
#: The named actor sharing a creates budget when no database is given.
_BUDGET_ACTOR: Final = "evolink-async-creates-budget"
_BUDGET_NAMESPACE: Final = "evolink-async"


class _CreatesBucket:
    """A reservation token bucket: every take is granted, the wait says when to use it."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        # A tenth of a second of tokens: the server's own bucket holds more.
        self.burst = max(1.0, rate / 10)
        self.tokens = self.burst
        self.stamp = time.monotonic()

    def take(self, count: int = 1) -> float:
        """Take `count` tokens; the seconds the taker waits before using them."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate) - count
        self.stamp = now
        return max(0.0, -self.tokens / self.rate)


class _RayBudget:
    """A creates budget shared by every actor through one named Ray actor."""

    def __init__(self, rate: float) -> None:
        remote: Any = ray.remote(num_cpus=0, max_restarts=-1)(_CreatesBucket)
        # Detached: the budget must outlive whichever actor happened to make
        # it, or killing that worker would take everyone's budget down.
        self._actor = remote.options(
            name=_BUDGET_ACTOR,
            namespace=_BUDGET_NAMESPACE,
            lifetime="detached",
            get_if_exists=True,
        ).remote(rate)
        self._local = _CreatesBucket(rate)

    async def take_create(self) -> None:
        try:
            wait = float(await self._actor.take.remote(1))
        except Exception:  # the budget actor is gone or restarting: the whole rate, locally
            wait = self._local.take(1)
        await asyncio.sleep(wait)

    def take_poll(self) -> bool:
        return True

    async def refill_polls(self) -> None:
        return None

    def rate_limited(self, kind: str) -> None:
        return None  # a fixed rate: each client's own pacer adapts


def _path(name: str, value: object) -> str | None:
    """A path argument as text (Ray ships it to every actor), or None."""
    if value is None or isinstance(value, str):
        return value
    text = os.fspath(value) if isinstance(value, os.PathLike) else None
    if isinstance(text, str):
        return text
    raise ValidationError(f"{name}: must be a str or a path, not {type(value).__name__}")


def _plain(value: Any) -> Any:
    """A batch cell as plain Python (numpy arrays and scalars, nested)."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    tolist = getattr(value, "tolist", None)
    if callable(tolist):  # numpy arrays and scalars
        return _plain(tolist())
    if isinstance(value, float) and math.isnan(value):
        return None  # a column missing from this row
    return value


def _rows(batch: Any) -> list[dict[str, Any]]:
    """The job dicts of a batch in any of Ray's formats (numpy dict, pandas, pyarrow)."""
    records: list[dict[str, Any]]
    if callable(getattr(batch, "to_pylist", None)):  # pyarrow.Table
        records = batch.to_pylist()
    elif callable(getattr(batch, "to_dict", None)) and hasattr(batch, "columns"):
        records = batch.to_dict("records")  # pandas.DataFrame
    elif isinstance(batch, Mapping):
        columns = {str(name): list(values) for name, values in batch.items()}
        count = len(next(iter(columns.values()), []))
        records = [{name: values[i] for name, values in columns.items()} for i in range(count)]
    else:
        raise ValidationError(f"EvoLinkVideos: unsupported batch type {type(batch).__name__}")
    jobs = []
    for record in records:
        row = {key: _plain(value) for key, value in record.items()}
        jobs.append({key: value for key, value in row.items() if value is not None})
    return jobs


def _columns(records: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Records as the column dict Ray takes back (every row the same keys)."""
    names = list(records[0]) if records else []
    return {name: [record.get(name) for record in records] for name in names}


def _transient(outcome: JobOutcome) -> bool:
    return isinstance(outcome.error, RateLimitError | ServerError | APIConnectionError)


def _check_client_options(options: Mapping[str, Any]) -> None:
    """
    The `client={...}` arguments, checked on the driver as `EvoLinkClient`
    checks them, so a bad value fails once when the stage is built instead of
    in every Ray task.
    """
    known = set(inspect.signature(EvoLinkClient).parameters) - {"api_key"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValidationError(
            f"client: unknown EvoLinkClient argument {unknown[0]!r}; "
            f"the arguments are {', '.join(sorted(known))}"
        )
    # Builds nothing that needs closing: the session is made on first use.
    EvoLinkClient("sk-options-check", **options)


class EvoLinkVideos:
    """
    A callable class for `Dataset.map_batches`: job dicts in, outcome records out.

    ::

        out = ray.data.from_items(job_dicts).map_batches(
            EvoLinkVideos,
            fn_constructor_kwargs={"run_id": "spring-2026", "creates_per_second": 18},
            batch_size=200, concurrency=4,
        )

    Each actor makes one `EvoLinkClient` on first use and keeps it; its
    batches run at once on that client (Ray runs an async `__call__` in
    the actor's own event loop). Rows out are `JobOutcome.to_record()`, in
    the batch's order, one per job. Jobs that ended on a rate limit or a
    transient error are sent again inside the call (same keys: replayed,
    never billed twice), since Ray does not retry an application's errors.

    The API key is read from `EVOLINK_API_KEY` in the worker's environment,
    never passed through Ray (constructor arguments are Ray objects).

    Args:
        run_id: names the run; with it every job's Idempotency-Key is derived
            from (run_id, job id, request), so a batch Ray re-runs after a
            worker died re-attaches instead of paying again. Required.
        journal: a `postgresql://` URL (or an SQLite path on a shared disk)
            for the batch journal; without it each batch keeps a temporary
            one and the derived keys alone prevent double creates.
        download_dir: download each completed video here.
        creates_per_second: one key's creates per second over every actor:
            shared through PostgreSQL (a `SharedBudget` on the `journal`
            database) when `journal` is a URL, else through a named Ray actor.
        client: more `EvoLinkClient` keyword arguments (`base_url`,
            `max_concurrency`, `poll`, `retry`...), never `api_key`.
    """

    def __init__(
        self,
        *,
        run_id: str,
        journal: str | None = None,
        download_dir: str | None = None,
        creates_per_second: float | None = None,
        client: Mapping[str, Any] | None = None,
    ) -> None:
        check_run_id(run_id)
        journal, download_dir = _path("journal", journal), _path("download_dir", download_dir)
        given: object = client  # Ray users' arguments are checked at run time too
        if given is not None and not (
            isinstance(given, Mapping) and all(isinstance(key, str) for key in given)
        ):
            raise ValidationError("client: must be a mapping of EvoLinkClient keyword arguments")
        options = dict(client or {})
        if "api_key" in options:
            raise ValidationError(
                "EvoLinkVideos: pass the API key as EVOLINK_API_KEY in the workers' "
                "environment, not in client={...} (constructor arguments are Ray objects)"
            )
        _check_client_options(options)
        rate = finite_number(creates_per_second)  # None for an int beyond the float range
        if creates_per_second is not None and (rate is None or rate <= 0):
            rule = "must be a finite number > 0"
            raise ValidationError(
                [Problem(field="creates_per_second", value=creates_per_second, rule=rule)]
            )
        self.run_id = run_id
        self.journal = journal
        self.download_dir = download_dir
        self.creates_per_second = rate
        self._options = options
        self._client: EvoLinkClient | None = None
        self._budget: SharedBudget | _RayBudget | None = None

    def __repr__(self) -> str:
        return f"EvoLinkVideos(run_id={self.run_id!r})"

    def _ensure_client(self) -> EvoLinkClient:
        if self._client is None:
            self._client = EvoLinkClient(os.environ.get("EVOLINK_API_KEY"), **self._options)
            rate = self.creates_per_second
            if rate is not None:
                if self.journal is not None and self.journal.startswith(
                    ("postgresql://", "postgres://")
                ):
                    self._budget = SharedBudget(self.journal, creates_per_second=rate)
                else:
                    self._budget = _RayBudget(rate)
        return self._client

    async def __call__(self, batch: Any) -> dict[str, list[Any]]:
        """Run one batch of job dicts; one `to_record()` row per job, in order."""
        client = self._ensure_client()
        jobs = _rows(batch)
        done: dict[int, JobOutcome] = {}
        todo = list(range(len(jobs)))
        for round_ in range(_RETRY_ROUNDS):
            run = client.batch(
                [jobs[index] for index in todo],
                run_id=self.run_id,
                journal=self.journal,
                download_dir=self.download_dir,
                budget=self._budget,
            )
            outcomes = await run.results()
            again = []
            for index, outcome in zip(todo, outcomes, strict=True):
                done[index] = outcome
                if _transient(outcome):
                    again.append(index)
            if not again or round_ == _RETRY_ROUNDS - 1:
                break
            advice = [
                done[index].error.retry_after or 0.0  # type: ignore[union-attr]
                for index in again
                if isinstance(done[index].error, RateLimitError)
            ]
            await asyncio.sleep(min(_MAX_ROUND_PAUSE, max([0.05 * 2**round_, *advice])))
            todo = again
        return _columns([done[index].to_record() for index in range(len(jobs))])
