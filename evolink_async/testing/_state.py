"""
What the mock server remembers: tasks (`MockTask`), counters (`MockStats`),
the request log (`RecordedRequest`), callback deliveries
(`CallbackDelivery`), the `MockState` its route groups share, and the pure
helpers that plan a task's life.

A task's state is never stored: it is computed from its timestamps and the
loop clock on every read, so a hundred thousand tasks cost no timers.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import hashlib
import math
import random
import string
from collections.abc import Mapping
from typing import Any, Final

import attrs

__all__ = [
    "FAILURE_MESSAGES",
    "ID_ALPHABET",
    "CallbackDelivery",
    "MockState",
    "MockStats",
    "MockTask",
    "ModelProfile",
    "RecordedRequest",
    "check_mixture",
    "check_progress",
    "pick_factor",
    "plan_progress",
    "sniff_image",
    "video_bytes",
]

PENDING: Final = "pending"
PROCESSING: Final = "processing"
COMPLETED: Final = "completed"
FAILED: Final = "failed"
CANCELLED: Final = "cancelled"
TERMINAL: Final = frozenset({COMPLETED, FAILED, CANCELLED})

#: How a task's progress moves while it runs (`MockEvoLink(progress=...)`):
#: uneven coarse steps, linear in time, or none at all until the end.
PROGRESS_MODES: Final = ("steps", "linear", "none")

#: The characters of the random part of task and upload ids.
ID_ALPHABET: Final = string.ascii_lowercase + string.digits

#: The failure codes API-NOTES lists, with a message like the API's.
FAILURE_MESSAGES: Final[Mapping[str, str]] = {
    "content_policy_violation": "The request was rejected by the content safety policy.",
    "invalid_parameters": "The upstream provider rejected the parameters.",
    "image_processing_error": "The input image could not be processed.",
    "image_dimension_mismatch": "The input images' dimensions do not match.",
    "request_cancelled": "The request was cancelled upstream.",
    "generation_failed_no_content": "The generation finished without any content.",
    "service_error": "The upstream service failed; try again.",
    "generation_timeout": "The generation timed out.",
    "resource_exhausted": "Upstream capacity is exhausted; try again later.",
    "quota_exceeded": "The upstream quota is exceeded; try again later.",
    "service_unavailable": "The upstream service is unavailable; try again later.",
    "resource_not_found": "A resource the request names was not found.",
    "unknown_error": "An unknown error occurred.",
}


@attrs.frozen(kw_only=True, slots=True)
class ModelProfile:
    """
    How the mock runs and bills one model.

    `estimated_time` is in unscaled seconds for the default duration (5 s of
    video). `rate` is credits per second of video (`per_second`) or per task
    (`per_call`).
    """

    estimated_time: float
    billing_rule: str
    rate: float


#: Profiles of the known models. The numbers are modest and made up (the
#: pages' own examples disagree with each other): seedance 10 credits per
#: second of video, seedance-fast 6, happyhorse 20, the wan models 5 per call.
MODEL_PROFILES: Final[Mapping[str, ModelProfile]] = {
    "seedance-2.0-image-to-video": ModelProfile(
        estimated_time=165.0, billing_rule="per_second", rate=10.0
    ),
    "seedance-2.0-fast-image-to-video": ModelProfile(
        estimated_time=90.0, billing_rule="per_second", rate=6.0
    ),
    "happyhorse-1.0-image-to-video": ModelProfile(
        estimated_time=240.0, billing_rule="per_second", rate=20.0
    ),
    "wan2.7-image-to-video": ModelProfile(estimated_time=120.0, billing_rule="per_call", rate=5.0),
    "wan2.5-image-to-video": ModelProfile(estimated_time=120.0, billing_rule="per_call", rate=5.0),
}
#: Any model the mock does not know.
DEFAULT_PROFILE: Final = ModelProfile(estimated_time=120.0, billing_rule="per_call", rate=5.0)


@attrs.define(kw_only=True, slots=True, eq=False)
class MockTask:
    """
    One task the mock created, with the plan of its whole life.

    Times (`created_at`, `started_at`, `finishes_at`) are on the loop clock
    (`MockEvoLink.clock()`); the task is `pending` before `started_at`,
    `processing` until `finishes_at`, then `final_status` (`completed`,
    `failed` or `cancelled`). `duration` is the drawn run time in (scaled)
    seconds; a failed or cancelled task ends part-way through it.
    `estimated_time` is what replies report (scaled mean x `eta_bias`);
    `body` is the create request's JSON as received. `progress_mode` is the
    mock's `progress` when the task was created (see `progress_at`).
    """

    id: str
    model: str
    body: Mapping[str, Any]
    idempotency_key: str | None
    created_at: float
    created_epoch: int
    started_at: float
    finishes_at: float
    final_status: str
    duration: float
    estimated_time: float
    video_duration: float | None
    billing_rule: str
    credits_reserved: float
    error_code: str | None = None
    error_message: str | None = None
    callback_url: str | None = None
    progress_marks: tuple[float, ...] = ()
    progress_values: tuple[int, ...] = ()
    progress_mode: str = "steps"
    url_generation: int = 0
    url_expires_at: float = math.inf

    def status_at(self, now: float) -> str:
        """The task's status string at loop time `now`."""
        if now >= self.finishes_at:
            return self.final_status
        if now >= self.started_at:
            return PROCESSING
        return PENDING

    def progress_at(self, now: float) -> int:
        """
        The progress (0-100) at loop time `now`: 0 while pending, 100 only
        once completed; while processing, by `progress_mode`: `"steps"`
        uneven monotonic steps, `"linear"` floor(100 x the elapsed share of
        the processing window), `"none"` 0. A failed or cancelled task keeps
        what it reached when it ended.
        """
        if now < self.started_at:
            return 0
        ended = now >= self.finishes_at
        if ended and self.final_status == COMPLETED:
            return 100
        mode = self.progress_mode
        if mode == "none":
            return 0
        if mode == "linear":
            # The window is the planned one (creation + run time), so a task
            # that fails part-way stops where the line had got to.
            window = self.created_at + self.duration - self.started_at
            at = min(now, self.finishes_at)
            fraction = (at - self.started_at) / window if window > 0 else 1.0
            return min(99, max(0, math.floor(100.0 * fraction)))
        if ended:
            return self.progress_values[-1] if self.progress_values else 0
        window = self.finishes_at - self.started_at
        fraction = (now - self.started_at) / window if window > 0 else 1.0
        index = bisect.bisect_right(self.progress_marks, fraction)
        return self.progress_values[index - 1] if index else 0


@attrs.frozen(kw_only=True, slots=True)
class RecordedRequest:
    """
    One request the mock received (kept in `MockEvoLink.requests_log`).

    `route` is the route key (`"GET /v1/tasks/{id}"`); `headers` include
    `Authorization` (it is the mock); `json` is the parsed JSON body, or None
    when there was none (or it was not JSON); `time` is the loop clock.
    """

    method: str
    path: str
    route: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    json: Any
    time: float
    request_id: str


@attrs.frozen(kw_only=True, slots=True)
class CallbackDelivery:
    """
    One callback the mock sent (or gave up on) for a finished task.

    `task_status` is the status the body carried; `http_status` is the
    receiver's last answer (None when it never answered); `attempts` counts
    the POSTs made (1 + retries).
    """

    task_id: str
    url: str
    task_status: str
    http_status: int | None
    attempts: int
    ok: bool
    time: float


def _counter() -> collections.Counter[str]:
    return collections.Counter()


@attrs.define(kw_only=True, slots=True)
class MockStats:
    """
    Counters of everything the mock saw; plain attributes to assert on.

    Attributes:
        requests: requests that reached a handler, by route key
            (`"POST /v1/videos/generations"`, `"GET /v1/tasks/{id}"`,
            `"GET /v1/tasks"`, `"POST /v1/tasks/batch"`, `"GET /v1/credits"`,
            `"POST /api/v1/files/upload/stream"` (`/base64`, `/url`),
            `"GET /files/videos/{name}"`, `"GET /files/uploads/{file_id}/{name}"`,
            and `"<METHOD> <unknown>"` for unknown routes), faulted ones
            included.
        tasks_created: tasks created (replays not counted).
        creates_per_key: tasks created per Idempotency-Key (never above 1).
        replays: creates answered by replaying an earlier reply.
        idempotency_conflicts: creates refused with `idempotency_conflict`.
        rejected_creates: creates answered with a 4xx (validation, quota...).
        in_flight: requests being handled right now (entry to reply).
        max_in_flight: the highest `in_flight` seen since the last reset.
        polls: for each task id, the loop time of every read of that task
            (single GETs and batch reads).
        callbacks_delivered: successful callback deliveries.
        callbacks_failed: callbacks given up on after every retry.
        callback_attempts: callback POSTs made, retries included.
        uploads: files stored by the files API.
        downloads: video downloads served (200 or 206), by task id.
        expired_downloads: video downloads refused because the URL expired.
        faults_injected: faults applied, by `Fault` value (`"rate_limit"`...).
        rate_limited: requests answered 429 by the mock's `RateLimit`, by
            route key (injected `RATE_LIMIT` faults are in `faults_injected`).
    """

    requests: collections.Counter[str] = attrs.field(factory=_counter)
    tasks_created: int = 0
    creates_per_key: dict[str, int] = attrs.field(factory=dict)
    replays: int = 0
    idempotency_conflicts: int = 0
    rejected_creates: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    polls: dict[str, list[float]] = attrs.field(factory=dict)
    callbacks_delivered: list[CallbackDelivery] = attrs.field(factory=list)
    callbacks_failed: list[CallbackDelivery] = attrs.field(factory=list)
    callback_attempts: int = 0
    uploads: int = 0
    downloads: collections.Counter[str] = attrs.field(factory=_counter)
    expired_downloads: int = 0
    faults_injected: collections.Counter[str] = attrs.field(factory=_counter)
    rate_limited: collections.Counter[str] = attrs.field(factory=_counter)

    def reset_max_in_flight(self) -> None:
        """Start measuring `max_in_flight` afresh (from the current `in_flight`)."""
        self.max_in_flight = self.in_flight

    def reset(self) -> None:
        """Zero every counter (tasks stay; `in_flight` keeps its live value)."""
        in_flight = self.in_flight
        fresh = MockStats()
        for field in attrs.fields(MockStats):
            setattr(self, field.name, getattr(fresh, field.name))
        self.in_flight = in_flight
        self.max_in_flight = in_flight


@attrs.define(kw_only=True, slots=True, eq=False)
class MockState:
    """
    What the route groups of one `MockEvoLink` share.

    The knobs the groups read live here rather than on the mock (which
    forwards its attributes of the same names), so a change such as
    `mock.batch_endpoint = False` reaches every group at once. The rest is
    the data more than one group touches: the tasks, the counters, the id
    stream (task ids and upload ids are drawn from one stream, so their
    interleaving is part of what `seed` repeats), the key that signs result
    URLs, and the loop clock.
    """

    time_scale: float
    duration_sigma: float
    duration_mixture: tuple[tuple[float, float], ...] | None = None
    progress: str = "steps"
    eta_bias: float
    report_estimated_time: bool
    failure_rate: float
    batch_endpoint: bool
    result_ttl: float
    callback_target: str | None
    validate: bool
    video_size: int
    estimated_times: Mapping[str, float]
    task_rng: random.Random
    id_rng: random.Random
    url_key: bytes
    stats: MockStats = attrs.field(factory=MockStats)
    tasks: dict[str, MockTask] = attrs.field(factory=dict)
    loop: asyncio.AbstractEventLoop | None = None
    #: The base URL, set once the server listens.
    url: str | None = None

    def clock(self) -> float:
        """The loop clock every task time is on."""
        loop = self.loop or asyncio.get_running_loop()
        return loop.time()

    def base_url(self) -> str:
        """The base URL (`http://127.0.0.1:PORT`); RuntimeError before the server listens."""
        if self.url is None:
            raise RuntimeError("MockEvoLink is not started")
        return self.url

    def sign(self, task_id: str, generation: int) -> str:
        """The `sig` of generation `generation` of the result URL of `task_id`."""
        digest = hashlib.blake2b(
            f"{task_id}:{generation}".encode(), key=self.url_key, digest_size=8
        )
        return digest.hexdigest()


def check_progress(value: object) -> str:
    """`value` as a `progress` mode; ValueError unless one of `PROGRESS_MODES`."""
    if not isinstance(value, str) or value not in PROGRESS_MODES:
        modes = ", ".join(repr(mode) for mode in PROGRESS_MODES)
        raise ValueError(f"progress must be one of {modes}, got {value!r}")
    return value


def check_mixture(value: object) -> tuple[tuple[float, float], ...] | None:
    """
    `value` as a `duration_mixture`: None, or (weight, factor) pairs with
    the weights scaled to sum to 1.

    Raises:
        ValueError: not a non-empty sequence of pairs of finite numbers,
            or a weight or factor not > 0.
    """
    if value is None:
        return None
    shape = "duration_mixture must be a non-empty sequence of (weight, factor) pairs"
    if isinstance(value, str | bytes) or not isinstance(value, tuple | list) or not value:
        raise ValueError(f"{shape}, got {value!r}")
    pairs: list[tuple[float, float]] = []
    for pair in value:
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise ValueError(f"{shape}, got the item {pair!r}")
        for number in pair:
            if (
                isinstance(number, bool)
                or not isinstance(number, int | float)
                or not math.isfinite(number)
            ):
                raise ValueError(f"{shape} of finite numbers, got the item {pair!r}")
        weight, factor = float(pair[0]), float(pair[1])
        if not weight > 0 or not factor > 0:
            raise ValueError(
                f"duration_mixture weights and factors must be > 0, got the item {pair!r}"
            )
        pairs.append((weight, factor))
    total = sum(weight for weight, _ in pairs)
    return tuple((weight / total, factor) for weight, factor in pairs)


def pick_factor(roll: float, mixture: tuple[tuple[float, float], ...]) -> float:
    """The factor of the mixture component a uniform `roll` in [0, 1) falls in."""
    running = 0.0
    for weight, factor in mixture:
        running += weight
        if roll < running:
            return factor
    return mixture[-1][1]  # rounding left the roll past the last weight


def plan_progress(
    rng: random.Random, *, completes: bool
) -> tuple[tuple[float, ...], tuple[int, ...]]:
    """
    Irregular progress steps for one task: (fractions of the processing
    window, progress values), both increasing.

    The values stay below 100 (100 is reported only once completed); a task
    that will fail gets fewer, lower steps.
    """
    count = rng.randint(3, 8) if completes else rng.randint(1, 4)
    # One mark per equal slice of the window, jittered inside it: uneven,
    # but never all bunched at one end.
    marks = [(i + rng.uniform(0.05, 0.95)) / count * 0.97 for i in range(count)]
    top = rng.randint(80, 99) if completes else rng.randint(10, 80)
    weights = [rng.uniform(0.2, 1.0) for _ in range(count)]
    total = sum(weights)
    values: list[int] = []
    running = 0.0
    for weight in weights:
        running += weight
        value = max(1, round(top * running / total))
        if values and value <= values[-1]:
            value = values[-1] + 1
        values.append(min(value, 99))
    # Steps that collided at the 99 cap are merged, keeping values increasing.
    dedup_marks: list[float] = []
    dedup_values: list[int] = []
    for mark, value in zip(marks, values, strict=True):
        if dedup_values and value <= dedup_values[-1]:
            continue
        dedup_marks.append(mark)
        dedup_values.append(value)
    return tuple(dedup_marks), tuple(dedup_values)


# An ISO-BMFF `ftyp` box, so sniffers take the fake video for an MP4.
_FTYP: Final = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"


def video_bytes(task_id: str, size: int) -> bytes:
    """
    The fake video of `task_id`: `size` bytes, the same on every call.

    An MP4 `ftyp` box followed by pseudo-random bytes seeded by the SHA-256
    of the task id.
    """
    seed = int.from_bytes(hashlib.sha256(task_id.encode()).digest(), "big")
    filler = random.Random(seed).randbytes(max(0, size - len(_FTYP)))
    return (_FTYP + filler)[:size]


def sniff_image(data: bytes) -> tuple[str, str] | None:
    """The (MIME type, extension) of an image by its magic bytes, or None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg", "jpg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png", "png"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif", "gif"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp", "webp"
    return None
