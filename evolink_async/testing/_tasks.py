"""
The task routes of the mock: create (validated, billed, `Idempotency-Key`
replays), read one, read a batch, list with paging, and the credits balance
with the ledger behind it.

A create plans the task's whole life at once (`plan_task`: run time,
outcome, progress steps, id); every read renders it at the loop time of the
read (`task_json`), so no timer runs per task. The ledger holds a task's cost
from its create until it ends, then moves it to used (completed) or back to
the balance (failed, cancelled).
"""

from __future__ import annotations

import heapq
import itertools
import json
import math
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

import attrs
from aiohttp import web

from ._replies import Call, ReplyError, dumps, json_response, not_found_route, num
from ._rules import check_create
from ._state import (
    CANCELLED,
    COMPLETED,
    DEFAULT_PROFILE,
    FAILED,
    FAILURE_MESSAGES,
    ID_ALPHABET,
    MODEL_PROFILES,
    TERMINAL,
    MockState,
    MockTask,
    pick_factor,
    plan_progress,
)

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "DEFAULT_VIDEO_SECONDS",
    "MAX_BATCH",
    "MAX_PAGE_SIZE",
    "TASK_ID_PATTERN",
    "Ledger",
    "TaskRoutes",
    "plan_task",
    "task_json",
]

#: A batch read takes at most this many ids (as EvoLink's own clients send).
MAX_BATCH: Final = 50
#: Default (and largest) page size of `GET /v1/tasks`.
DEFAULT_PAGE_SIZE: Final = 20
MAX_PAGE_SIZE: Final = 100
#: Default video length (seconds) when a request names none.
DEFAULT_VIDEO_SECONDS: Final = 5.0
#: Share of a task's run time spent queued (pending) before processing.
QUEUE_SHARE: Final = (0.05, 0.15)
#: A failed or cancelled task ends this far into its run time.
EARLY_END_SHARE: Final = (0.3, 1.0)

TASK_ID_PATTERN: Final = re.compile(r"task-unified-\d+-[a-z0-9]+")
_IDEMPOTENCY_KEY: Final = re.compile(r"[A-Za-z0-9._-]{16,96}")
_MOCK_FAIL: Final = re.compile(r"mock:fail=([A-Za-z0-9_.-]+)")
_FAILURE_CODES: Final = tuple(FAILURE_MESSAGES)
# Built once: `json.dumps` with options makes a new encoder on every call.
_CANONICAL: Final = json.JSONEncoder(separators=(",", ":"), sort_keys=True)


@attrs.frozen(slots=True)
class _Replay:
    """What an `Idempotency-Key` replays: the body it came with and the reply it got."""

    canonical_body: str
    reply: bytes


def _is_number(value: Any) -> bool:
    """True for a finite, positive int or float (not a bool)."""
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


class Ledger:
    """
    The credits: the starting balance (plus top-ups), what running tasks
    hold, and what ended tasks used.

    Tasks are settled lazily, in the order they end, whenever the balance is
    read, so no timer runs per task.
    """

    def __init__(self, credits: float) -> None:  # noqa: A002 -- the API's word for the balance
        self.initial = credits
        self.used = 0.0
        self.held = 0.0
        self._ending: list[tuple[float, int, MockTask]] = []
        self._seq = itertools.count()

    def remaining(self, now: float) -> float:
        """The balance at loop time `now`: what is neither used nor held."""
        self.settle(now)
        return self.initial - self.used - self.held

    def hold(self, task: MockTask) -> None:
        """Hold `task`'s reserved credits until it ends."""
        self.held += task.credits_reserved
        heapq.heappush(self._ending, (task.finishes_at, next(self._seq), task))

    def settle(self, now: float) -> None:
        """Move credits of tasks that ended by `now` from held to used (or back)."""
        ending = self._ending
        while ending and ending[0][0] <= now:
            _, _, task = heapq.heappop(ending)
            self.held -= task.credits_reserved
            if task.final_status == COMPLETED:
                self.used += task.credits_reserved


def task_json(state: MockState, task: MockTask, now: float) -> dict[str, Any]:
    """
    `task` as the API shows it at loop time `now`.

    A completed task's result URL is reissued (new `sig`, fresh TTL) once
    the last one has expired, so rendering may update the task.
    """
    status = task.status_at(now)
    terminal = status in TERMINAL
    info: dict[str, Any] = {"can_cancel": not terminal}
    if state.report_estimated_time:
        info["estimated_time"] = num(round(task.estimated_time, 3))
    if task.video_duration is not None:
        info["video_duration"] = num(task.video_duration)
    usage: dict[str, Any] = {
        "billing_rule": task.billing_rule,
        "credits_reserved": num(task.credits_reserved),
        "user_group": "default",
    }
    if terminal:
        usage["credits_used"] = num(task.credits_reserved if status == COMPLETED else 0.0)
    data: dict[str, Any] = {
        "id": task.id,
        "object": "video.generation.task",
        "created": task.created_epoch,
        "model": task.model,
        "status": status,
        "progress": task.progress_at(now),
        "type": "video",
        "task_info": info,
        "usage": usage,
    }
    if status == COMPLETED:
        data["results"] = [_result_url(state, task, now)]
    elif status == FAILED:
        data["error"] = {"code": task.error_code, "message": task.error_message}
    return data


def _result_url(state: MockState, task: MockTask, now: float) -> str:
    """The signed URL of `task`'s video, reissued when the current one has expired."""
    if now >= task.url_expires_at:
        task.url_generation += 1
        task.url_expires_at = now + state.result_ttl * state.time_scale
    sig = state.sign(task.id, task.url_generation)
    return f"{state.base_url()}/files/videos/{task.id}.mp4?sig={sig}"


def plan_task(
    state: MockState,
    body: dict[str, Any],
    model: str,
    key: str | None,
    now: float,
    video_duration: float | None,
    billing_rule: str,
    cost: float,
) -> MockTask:
    """
    The whole life of a task created at loop time `now`: run time, outcome,
    progress steps and id.
    """
    rng = state.task_rng
    estimated_times = state.estimated_times
    base = estimated_times.get(model, estimated_times.get("*", DEFAULT_PROFILE.estimated_time))
    factor = 1.0
    if video_duration is not None:
        factor = min(max(0.5 + 0.5 * video_duration / DEFAULT_VIDEO_SECONDS, 0.5), 4.0)
    mean = base * factor * state.time_scale
    sigma = state.duration_sigma
    centre = mean
    if state.duration_mixture is not None:
        # One more draw only with a mixture: the default stream stays as it was.
        centre = mean * pick_factor(rng.random(), state.duration_mixture)
    run_time = centre * math.exp(rng.gauss(0.0, sigma) - sigma * sigma / 2) if sigma else centre
    started_at = now + run_time * rng.uniform(*QUEUE_SHARE)
    end_share = rng.uniform(*EARLY_END_SHARE)
    failure_roll = rng.random()
    random_code = rng.choice(_FAILURE_CODES)

    final_status = COMPLETED
    error_code: str | None = None
    prompt = body.get("prompt")
    forced = _MOCK_FAIL.search(prompt) if isinstance(prompt, str) else None
    if forced is not None:
        final_status, error_code = FAILED, forced.group(1)
    elif isinstance(prompt, str) and "mock:cancel" in prompt:
        final_status = CANCELLED
    elif failure_roll < state.failure_rate:
        final_status, error_code = FAILED, random_code
    finishes_at = now + run_time
    if final_status != COMPLETED:
        finishes_at = started_at + (finishes_at - started_at) * end_share
    # Drawn in every progress mode, so a mode never shifts later tasks' draws.
    marks, values = plan_progress(rng, completes=final_status == COMPLETED)

    callback_url = body.get("callback_url")
    epoch = int(time.time())
    while True:
        suffix = "".join(state.id_rng.choices(ID_ALPHABET, k=8))
        task_id = f"task-unified-{epoch}-{suffix}"
        if task_id not in state.tasks:
            break
    return MockTask(
        id=task_id,
        model=model,
        body=body,
        idempotency_key=key,
        created_at=now,
        created_epoch=epoch,
        started_at=started_at,
        finishes_at=finishes_at,
        final_status=final_status,
        duration=run_time,
        estimated_time=mean * state.eta_bias,
        video_duration=video_duration,
        billing_rule=billing_rule,
        credits_reserved=cost,
        error_code=error_code,
        error_message=(
            FAILURE_MESSAGES.get(error_code, f"Generation failed: {error_code}")
            if error_code
            else None
        ),
        callback_url=callback_url if isinstance(callback_url, str) else None,
        progress_marks=marks,
        progress_values=values,
        progress_mode=state.progress,
        url_expires_at=(
            finishes_at + state.result_ttl * state.time_scale
            if final_status == COMPLETED
            else math.inf
        ),
    )


class TaskRoutes:
    """
    `POST /v1/videos/generations`, `GET /v1/tasks/{id}`,
    `POST /v1/tasks/batch`, `GET /v1/tasks` and `GET /v1/credits`.

    Args:
        state: the shared state.
        ledger: the credits creates are billed against.
        on_callback: called with each new task that has a `callback_url`.
    """

    def __init__(
        self, state: MockState, ledger: Ledger, on_callback: Callable[[MockTask], None]
    ) -> None:
        self._state = state
        self._ledger = ledger
        self._on_callback = on_callback
        self._idempotency: dict[str, _Replay] = {}

    async def create(self, call: Call) -> web.StreamResponse:
        """`POST /v1/videos/generations`; counts the creates it refuses."""
        try:
            return self._create(call)
        except ReplyError:
            self._state.stats.rejected_creates += 1
            raise

    def _create(self, call: Call) -> web.StreamResponse:
        """A replay, a refusal (raised) or a new task."""
        state = self._state
        body = call.json
        if call.bad_json or not isinstance(body, dict):
            raise ReplyError(400, "invalid_request", "Request body must be a JSON object")
        key = call.request.headers.get("Idempotency-Key")
        canonical = ""
        if key is not None:
            if not _IDEMPOTENCY_KEY.fullmatch(key):
                raise ReplyError(
                    400,
                    "invalid_request",
                    "Idempotency-Key must be 16-96 characters of [A-Za-z0-9._-]",
                    param="Idempotency-Key",
                )
            canonical = _CANONICAL.encode(body)
            replay = self._idempotency.get(key)
            if replay is not None:
                if replay.canonical_body != canonical:
                    state.stats.idempotency_conflicts += 1
                    raise ReplyError(
                        409,
                        "idempotency_conflict",
                        "This Idempotency-Key was used with a different request body",
                        param="Idempotency-Key",
                    )
                state.stats.replays += 1
                return web.Response(
                    body=replay.reply,
                    content_type="application/json",
                    headers={"idempotency-replayed": "true"},
                )

        if state.validate:
            violation = check_create(body)
            if violation is not None:
                raise ReplyError(400, violation.code, violation.message, param=violation.param)
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise ReplyError(400, "invalid_request", "model is required", param="model")

        now = call.now
        profile = MODEL_PROFILES.get(model, DEFAULT_PROFILE)
        duration: Any = body.get("duration")
        if _is_number(duration):
            video_duration: float | None = float(duration)
        elif model in MODEL_PROFILES:
            video_duration = DEFAULT_VIDEO_SECONDS
        else:
            video_duration = None
        billed_seconds = video_duration or DEFAULT_VIDEO_SECONDS
        cost = profile.rate * (billed_seconds if profile.billing_rule == "per_second" else 1.0)
        remaining = self._ledger.remaining(now)
        if cost > remaining:
            raise ReplyError(
                402,
                "insufficient_quota",
                f"Insufficient credits: this request needs {num(cost)}, "
                f"{num(max(remaining, 0.0))} remaining",
            )

        task = plan_task(state, body, model, key, now, video_duration, profile.billing_rule, cost)
        state.tasks[task.id] = task
        self._ledger.hold(task)
        if task.callback_url is not None:
            self._on_callback(task)
        state.stats.tasks_created += 1
        reply = dumps(task_json(state, task, now))
        if key is not None:
            self._idempotency[key] = _Replay(canonical, reply)
            state.stats.creates_per_key[key] = state.stats.creates_per_key.get(key, 0) + 1
        return web.Response(body=reply, content_type="application/json")

    def _read(self, task: MockTask, now: float) -> dict[str, Any]:
        """`task`'s JSON, the read counted in `stats.polls`."""
        polls = self._state.stats.polls.get(task.id)
        if polls is None:
            self._state.stats.polls[task.id] = [now]
        else:
            polls.append(now)
        return task_json(self._state, task, now)

    async def get_task(self, call: Call) -> web.StreamResponse:
        """`GET /v1/tasks/{id}`."""
        task_id = call.request.match_info["task_id"]
        if not TASK_ID_PATTERN.fullmatch(task_id):
            raise ReplyError(400, "invalid_task_id", f"Invalid task id: {task_id}", param="task_id")
        task = self._state.tasks.get(task_id)
        if task is None:
            raise ReplyError(404, "not_found", f"Task {task_id} not found or expired")
        return json_response(self._read(task, call.now))

    async def batch(self, call: Call) -> web.StreamResponse:
        """`POST /v1/tasks/batch`: a 404 like an unknown route while `batch_endpoint` is off."""
        if not self._state.batch_endpoint:
            return not_found_route(call.request, call.request_id)
        body = call.json
        ids = body.get("task_ids") if isinstance(body, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ReplyError(
                400, "invalid_request", "task_ids must be a list of task ids", param="task_ids"
            )
        if len(ids) > MAX_BATCH:
            raise ReplyError(
                400,
                "invalid_request",
                f"task_ids may hold at most {MAX_BATCH} ids, got {len(ids)}",
                param="task_ids",
            )
        found: list[dict[str, Any]] = []
        not_found: list[str] = []
        tasks = self._state.tasks
        for task_id in dict.fromkeys(ids):
            task = tasks.get(task_id)
            if task is None:
                not_found.append(task_id)
            else:
                found.append(self._read(task, call.now))
        return json_response({"data": found, "not_found": not_found})

    async def list_tasks(self, call: Call) -> web.StreamResponse:
        """`GET /v1/tasks?status=&model=&page=&page_size=`, newest first."""
        query = call.request.query
        page = _query_int(query, "page", 1, 1, None)
        page_size = _query_int(query, "page_size", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
        status = query.get("status")
        model = query.get("model")
        now = call.now
        matching = [
            task
            for task in reversed(self._state.tasks.values())
            if (model is None or task.model == model)
            and (status is None or task.status_at(now) == status)
        ]
        start = (page - 1) * page_size
        data = [task_json(self._state, task, now) for task in matching[start : start + page_size]]
        return json_response(
            {"data": data, "total": len(matching), "page": page, "page_size": page_size}
        )

    async def credits(self, call: Call) -> web.StreamResponse:
        """`GET /v1/credits`."""
        remaining = num(self._ledger.remaining(call.now))
        used = num(self._ledger.used)
        return json_response(
            {
                "success": True,
                "data": {
                    "user": {"remaining_credits": remaining, "used_credits": used},
                    "token": {
                        "remaining_credits": remaining,
                        "unlimited_credits": False,
                        "used_credits": used,
                    },
                },
            }
        )


def _query_int(
    query: Mapping[str, str], name: str, default: int, low: int, high: int | None
) -> int:
    """The integer query parameter `name` in [low, high], or a 400."""
    text = query.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if value < low or (high is not None and value > high):
        limit = f" and {high}" if high is not None else ""
        raise ReplyError(
            400,
            "invalid_request",
            f"{name} must be an integer >= {low}{limit}",
            param=name,
        )
    return value
