"""
Observability: event hooks (what they are told, what they never see, what a
raising hook does), `Task.request_id`, the `EVOLINK_LOG` switch, and
OpenTelemetry spans and counters (an SDK provider with in-memory exporters
handed to the client; the global providers and a machine without
OpenTelemetry in subprocesses).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import attrs
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from evolink_async import (
    EvoLinkClient,
    RateLimitError,
    RequestEvent,
    ServerError,
    Task,
    TaskStatus,
    ValidationError,
)
from evolink_async.testing import Fault, MockEvoLink

from .conftest import make_client

pytestmark = pytest.mark.anyio

MODEL: Final = "wan2.5-image-to-video"
WAN: dict[str, Any] = {"prompt": "observed", "image_urls": ["https://example.com/a.jpg"]}
GET_TASK: Final = "GET /v1/tasks/{id}"
CREATE: Final = "POST /v1/videos/generations"
VIDEO: Final = "GET /files/videos/{name}"
PNG: Final = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00\x00\x00\x10" * 2 + b"\x08\x02"
REPO: Final = Path(__file__).resolve().parent.parent


class Recorder:
    """Event hooks that keep every event, one sync and one async kind."""

    def __init__(self) -> None:
        self.events: list[RequestEvent] = []

    def sync(self, event: RequestEvent) -> None:
        self.events.append(event)

    async def later(self, event: RequestEvent) -> None:
        await asyncio.sleep(0)
        self.events.append(event)

    def hooks(self) -> dict[str, list[Any]]:
        return {"request": [self.sync], "response": [self.later], "retry": [self.sync]}

    def summary(self) -> list[tuple[str, str, int, int | None]]:
        return [(e.event, e.route, e.attempt, e.status) for e in self.events]


class StopError(Exception):
    """What the raising hooks raise."""


def routes(mock: MockEvoLink, route: str) -> list[Any]:
    return [seen for seen in mock.requests_log if seen.route == route]


# -- event hooks -----------------------------------------------------------------


async def test_hooks_see_each_attempt_and_retry_of_a_request(mock: MockEvoLink) -> None:
    recorder = Recorder()
    async with make_client(mock, event_hooks=recorder.hooks()) as client:
        task = await client.submit(MODEL, **WAN)
        recorder.events.clear()
        mock.inject(Fault.SERVER_ERROR, route=GET_TASK, status=503)
        read = await client.get_task(task.id)
    assert recorder.summary() == [
        ("request", "/v1/tasks/{id}", 1, None),
        ("response", "/v1/tasks/{id}", 1, 503),
        ("retry", "/v1/tasks/{id}", 1, 503),
        ("request", "/v1/tasks/{id}", 2, None),
        ("response", "/v1/tasks/{id}", 2, 200),
    ]
    first, failed, retry, _, answered = recorder.events
    served = routes(mock, GET_TASK)
    assert len(served) == 2
    assert first.method == "GET" and first.path == f"/v1/tasks/{task.id}"
    assert first.elapsed is None and first.error is None
    assert isinstance(failed.error, ServerError) and failed.request_id == served[0].request_id
    assert retry.wait is not None and retry.wait >= 0 and isinstance(retry.error, ServerError)
    assert answered.error is None and answered.request_id == served[1].request_id
    assert answered.elapsed is not None and answered.elapsed > 0
    assert read.request_id == served[1].request_id


async def test_hooks_see_polls_creates_uploads_and_a_429(mock: MockEvoLink) -> None:
    recorder = Recorder()
    async with make_client(mock, event_hooks=recorder.hooks()) as client:
        mock.inject(Fault.RATE_LIMIT, route=CREATE, retry_after=0.01)
        await client.upload_file(PNG, file_name="a.png")
        task = await client.generate(MODEL, **WAN)
    responses = [e for e in recorder.events if e.event == "response"]
    assert [e.route for e in responses[:3]] == [
        "/api/v1/files/upload/stream",
        "/v1/videos/generations",
        "/v1/videos/generations",
    ]
    assert [e.status for e in responses[1:3]] == [429, 200]
    (retry,) = [e for e in recorder.events if e.event == "retry"]
    assert isinstance(retry.error, RateLimitError) and retry.wait is not None
    assert retry.wait >= 0.01  # at least the Retry-After
    polls = [e for e in responses if e.route == "/v1/tasks/{id}"]
    assert len(polls) == len(mock.stats.polls[task.id]) >= 1


async def test_an_event_path_has_no_query_string(mock: MockEvoLink) -> None:
    recorder = Recorder()
    async with make_client(mock, event_hooks=recorder.hooks()) as client:
        assert [task async for task in client.list_tasks(status="completed")] == []
    assert {(e.path, e.route) for e in recorder.events} == {("/v1/tasks", "/v1/tasks")}
    assert routes(mock, "GET /v1/tasks")[0].query["status"] == "completed"


async def test_events_never_hold_the_key_or_a_header(mock: MockEvoLink) -> None:
    recorder = Recorder()
    key = mock.api_key
    async with make_client(mock, event_hooks=recorder.hooks()) as client:
        mock.inject(Fault.REPLY, route="GET /v1/credits", status=401, body={"error": key})
        with pytest.raises(Exception, match="api key"):
            await client.get_credits()
        await client.generate(MODEL, **WAN)
    assert "headers" not in attrs.fields_dict(RequestEvent)
    assert len(recorder.events) >= 4
    for event in recorder.events:
        assert key not in repr(event) and key not in str(event.error)


async def test_a_request_hook_that_raises_ends_the_call_before_sending(
    mock: MockEvoLink,
) -> None:
    stop = StopError("no")

    def refuse(event: RequestEvent) -> None:
        raise stop

    async with make_client(mock, event_hooks={"request": [refuse]}) as client:
        with pytest.raises(StopError) as caught:
            await client.get_credits()
    assert caught.value is stop
    assert "'request' event hook" in "".join(caught.value.__notes__)
    assert mock.requests_log == type(mock.requests_log)()


async def test_a_response_hook_that_raises_stops_the_retries(mock: MockEvoLink) -> None:
    async def refuse(event: RequestEvent) -> None:
        if event.status == 503:
            raise StopError("a 503")

    async with make_client(mock, event_hooks={"response": [refuse]}) as client:
        mock.inject(Fault.SERVER_ERROR, route="GET /v1/credits", status=503, times=3)
        with pytest.raises(StopError, match="a 503"):
            await client.get_credits()
    assert len(routes(mock, "GET /v1/credits")) == 1


async def test_a_hook_that_raises_on_a_poll_ends_the_wait_with_it(mock: MockEvoLink) -> None:
    def refuse_polls(event: RequestEvent) -> None:
        if event.route == "/v1/tasks/{id}":
            raise StopError("no polling today")

    async with make_client(mock, event_hooks={"response": [refuse_polls]}) as client:
        task = await client.submit(MODEL, **WAN)
        waits = [client.wait(task, timeout=5), client.wait(task.id, timeout=5)]
        results = await asyncio.gather(*waits, return_exceptions=True)
        # The client goes on: only that task's waits ended.
        assert (await client.get_credits()).remaining_credits is not None
    assert all(isinstance(result, StopError) for result in results), results
    assert len(routes(mock, GET_TASK)) == 1


@pytest.mark.parametrize(
    ("hooks", "rule"),
    [
        ([print], "must be a dict"),
        ({"requests": [print]}, "unknown kind 'requests'"),
        ({"request": print}, "must be a list"),
        ({"request": "print"}, "must be a list"),
        ({"response": [print, 3]}, "3 is not callable"),
    ],
)
def test_bad_event_hooks_are_refused(hooks: object, rule: str) -> None:
    with pytest.raises(ValidationError, match=rule):
        EvoLinkClient("sk-test-key-0000", event_hooks=hooks)  # type: ignore[arg-type]


# -- Task.request_id -------------------------------------------------------------


async def test_every_snapshot_carries_the_request_id_of_its_reply(
    client: EvoLinkClient, mock: MockEvoLink
) -> None:
    created = await client.submit(MODEL, **WAN)
    read = await client.get_task(created.id)
    done = await client.wait(created)
    create_ids = [seen.request_id for seen in routes(mock, CREATE)]
    read_ids = [seen.request_id for seen in routes(mock, GET_TASK)]
    assert created.request_id == create_ids[0]
    assert read.request_id == read_ids[0]
    assert done.request_id == read_ids[-1]
    assert len({created.request_id, read.request_id, done.request_id}) == 3
    # Metadata of the reply, not of the task: left out of equality.
    assert attrs.evolve(read, request_id="another") == read
    assert Task.from_json(dict(done.raw)).request_id is None


# -- EVOLINK_LOG -----------------------------------------------------------------


def run_program(code: str, url: str, key: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        **{name: value for name, value in os.environ.items() if name != "EVOLINK_LOG"},
        "EVOLINK_API_KEY": key,
        "EVOLINK_BASE_URL": url,
        "EVOLINK_FILES_BASE_URL": url,
        **env,
    }
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=environment,
        cwd=REPO,
        timeout=60,
        check=True,
    )


TWO_CLIENTS: Final = """
    import asyncio
    from evolink_async import EvoLinkClient

    async def main():
        for _ in range(2):
            async with EvoLinkClient() as client:
                await client.get_credits()
                task = await client.submit(
                    "wan2.5-image-to-video", prompt="log", image_urls=["https://x.io/a.jpg"],
                    idempotency_key="same-key-every-time-01",
                )
        print(task.id)

    asyncio.run(main())
"""


def test_evolink_log_debug_attaches_one_stderr_handler(mock_server: tuple[str, str]) -> None:
    url, key = mock_server
    result = run_program(TWO_CLIENTS, url, key, EVOLINK_LOG="debug")
    lines = result.stderr.splitlines()
    reads = [line for line in lines if "GET /v1/credits -> 200" in line]
    assert len(reads) == 2, result.stderr  # two calls, one handler
    assert all(" DEBUG evolink_async: " in line for line in reads)
    assert any("create replayed" in line and " INFO " in line for line in lines)
    assert key not in result.stderr


def test_evolink_log_info_shows_no_debug_lines(mock_server: tuple[str, str]) -> None:
    url, key = mock_server
    result = run_program(TWO_CLIENTS, url, key, EVOLINK_LOG="INFO")
    assert "create replayed" in result.stderr
    assert "->" not in result.stderr


def test_an_unknown_evolink_log_value_logs_nothing(mock_server: tuple[str, str]) -> None:
    url, key = mock_server
    result = run_program(TWO_CLIENTS, url, key, EVOLINK_LOG="verbose")
    assert result.stderr == ""
    assert result.stdout.startswith("task-")


# -- OpenTelemetry ---------------------------------------------------------------


@attrs.define
class Otel:
    """An SDK tracer and meter provider whose output stays in memory."""

    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader
    tracer_provider: TracerProvider
    meter_provider: MeterProvider

    def finished(self, name: str) -> list[ReadableSpan]:
        return [span for span in self.spans.get_finished_spans() if span.name == name]

    def counter(self, name: str) -> list[tuple[dict[str, Any], int]]:
        data = self.metrics.get_metrics_data()
        points: list[tuple[dict[str, Any], int]] = []
        for resource in data.resource_metrics if data is not None else []:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        points.extend(
                            (dict(point.attributes or {}), int(point.value))  # type: ignore[union-attr]
                            for point in metric.data.data_points
                        )
        return points

    def total(self, name: str) -> int:
        return sum(value for _, value in self.counter(name))


@pytest.fixture
def otel() -> Iterator[Otel]:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    metrics = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[metrics])
    yield Otel(spans, metrics, tracer_provider, meter_provider)
    tracer_provider.shutdown()
    meter_provider.shutdown()


def traced(mock: MockEvoLink, otel: Otel, **overrides: Any) -> EvoLinkClient:
    return make_client(
        mock,
        tracer_provider=otel.tracer_provider,
        meter_provider=otel.meter_provider,
        **overrides,
    )


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


async def test_generate_then_download_is_one_trace(
    mock: MockEvoLink, otel: Otel, tmp_path: Path
) -> None:
    tracer = otel.tracer_provider.get_tracer("the app")
    async with traced(mock, otel) as client:
        with tracer.start_as_current_span("job") as job:
            task = await client.generate(MODEL, **WAN)
            await client.download(task, tmp_path / "out.mp4")
    job_id = job.get_span_context().span_id
    (generate,) = otel.finished("evolink.generate")
    (submit,) = otel.finished("evolink.submit")
    (wait,) = otel.finished("evolink.wait")
    (download,) = otel.finished("evolink.download")
    polls = otel.finished("evolink.poll")
    spans = otel.spans.get_finished_spans()
    assert {span.context.trace_id for span in spans} == {job.get_span_context().trace_id}
    assert parent_of(generate) == job_id and parent_of(download) == job_id
    assert parent_of(submit) == parent_of(wait) == generate.context.span_id
    # The polls ran in the shared watcher's task, yet belong to this wait.
    assert len(polls) == len(mock.stats.polls[task.id]) >= 1
    assert {parent_of(poll) for poll in polls} == {wait.context.span_id}
    assert generate.attributes == {"evolink.model": MODEL}
    assert submit.attributes is not None and submit.attributes["evolink.task.id"] == task.id
    assert wait.attributes == {"evolink.task.id": task.id, "evolink.task.status": "completed"}
    assert download.attributes == {"evolink.task.id": task.id}
    assert polls[-1].attributes == {"evolink.poll.tasks": 1, "evolink.task.id": task.id}


async def test_a_poll_serving_two_waiters_is_a_child_of_one_and_linked_to_the_other(
    mock: MockEvoLink, otel: Otel
) -> None:
    tracer = otel.tracer_provider.get_tracer("the app")

    async def wait_in(name: str, task: Task) -> Task:
        with tracer.start_as_current_span(name):
            return await client.wait(task)

    async with traced(mock, otel) as client:
        task = await client.submit(MODEL, **WAN)
        await asyncio.gather(wait_in("first", task), wait_in("second", task))
    waits = {parent_of(span): span for span in otel.finished("evolink.wait")}
    (first,) = otel.finished("first")
    (second,) = otel.finished("second")
    first_wait = waits[first.context.span_id].context
    second_wait = waits[second.context.span_id].context
    polls = otel.finished("evolink.poll")
    assert polls
    for poll in polls:
        assert poll.context.trace_id == first_wait.trace_id
        assert parent_of(poll) == first_wait.span_id
        assert [link.context.span_id for link in poll.links] == [second_wait.span_id]


async def test_a_failed_poll_is_an_error_span(mock: MockEvoLink, otel: Otel) -> None:
    async with traced(mock, otel) as client:
        task = await client.submit(MODEL, **WAN)
        mock.inject(Fault.SERVER_ERROR, route=GET_TASK, status=502)
        await client.wait(task)
    polls = otel.finished("evolink.poll")
    failed = [poll for poll in polls if not poll.status.is_ok]
    assert len(failed) == 1 and failed[0] is polls[0]
    assert failed[0].events[0].name == "exception"


async def test_counters_count_requests_retries_429s_and_polls(
    mock: MockEvoLink, otel: Otel
) -> None:
    async with traced(mock, otel) as client:
        mock.inject(Fault.RATE_LIMIT, route=CREATE, retry_after=0.01)
        task = await client.generate(MODEL, **WAN)
        await client.get_task(task.id)
    api = [seen for seen in mock.requests_log if seen.route != VIDEO]
    assert otel.total("evolink.client.requests") == len(api)
    assert otel.total("evolink.client.retries") == 1
    assert otel.total("evolink.client.rate_limits") == 1
    assert otel.total("evolink.client.polls") == len(mock.stats.polls[task.id]) - 1
    statuses = {
        (point["url.template"], point.get("http.response.status_code"), value)
        for point, value in otel.counter("evolink.client.requests")
    }
    assert ("/v1/videos/generations", 429, 1) in statuses
    assert ("/v1/videos/generations", 200, 1) in statuses
    (retry,) = otel.counter("evolink.client.retries")
    assert retry[0] == {
        "http.request.method": "POST",
        "url.template": "/v1/videos/generations",
        "error.type": "RateLimitError",
    }


async def test_no_span_or_counter_holds_the_key(
    mock: MockEvoLink, otel: Otel, tmp_path: Path
) -> None:
    key = mock.api_key
    async with traced(mock, otel) as client:
        mock.inject(Fault.REPLY, route=GET_TASK, status=500, body={"error": f"Bearer {key}"})
        task = await client.generate(MODEL, **WAN)
        await client.download(task, tmp_path / "out.mp4")
    spans = otel.spans.get_finished_spans()
    assert len(spans) >= 5
    texts = [span.to_json() for span in spans]
    texts += [
        json.dumps(attributes)
        for name in ("requests", "retries", "polls")
        for attributes, _ in otel.counter(f"evolink.client.{name}")
    ]
    assert any("Bearer" in text for text in texts)  # the error reached a span event
    assert not any(key in text for text in texts)
    assert not any("Authorization" in text for text in texts)


GLOBAL_PROVIDERS: Final = """
    import asyncio, json
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from evolink_async import EvoLinkClient

    async def main():
        async with EvoLinkClient(max_retries=0) as client:
            await client.get_credits()  # no provider yet: nothing recorded
            exporter, reader = InMemorySpanExporter(), InMemoryMetricReader()
            provider = TracerProvider()
            provider.add_span_processor(SimpleSpanProcessor(exporter))
            trace.set_tracer_provider(provider)
            metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
            await asyncio.sleep(1.1)  # a provider set later is found within a second
            await client.generate(
                "wan2.5-image-to-video", prompt="global", image_urls=["https://x.io/a.jpg"]
            )
        names = sorted({span.name for span in exporter.get_finished_spans()})
        counted = sorted(
            metric.name
            for resource in reader.get_metrics_data().resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
        )
        print(json.dumps({"spans": names, "counters": counted}))

    asyncio.run(main())
"""


def test_the_global_providers_are_used_once_set(mock_server: tuple[str, str]) -> None:
    url, key = mock_server
    result = run_program(GLOBAL_PROVIDERS, url, key)
    found = json.loads(result.stdout)
    assert found["spans"] == [
        "evolink.generate",
        "evolink.poll",
        "evolink.submit",
        "evolink.wait",
    ]
    assert found["counters"] == [
        "evolink.client.polls",
        "evolink.client.requests",
    ]


WITHOUT_OTEL: Final = """
    import asyncio, sys
    sys.modules["opentelemetry"] = None  # as if the otel extra were not installed
    from evolink_async import EvoLinkClient
    from evolink_async._telemetry import GLOBAL, otel_installed

    async def main():
        async with EvoLinkClient() as client:
            task = await client.generate(
                "wan2.5-image-to-video", prompt="plain", image_urls=["https://x.io/a.jpg"]
            )
        print(otel_installed(), GLOBAL.tracer(), GLOBAL.counters(), task.status.value)

    asyncio.run(main())
"""


def test_without_opentelemetry_everything_works_and_nothing_is_made(
    mock_server: tuple[str, str],
) -> None:
    url, key = mock_server
    result = run_program(WITHOUT_OTEL, url, key)
    assert result.stdout.split() == ["False", "None", "None", "completed"]
    assert result.stderr == ""


def test_with_no_provider_set_no_tracer_or_counter_is_made() -> None:
    from evolink_async._telemetry import Telemetry

    telemetry = Telemetry()
    assert telemetry.tracer() is None and telemetry.counters() is None
    assert telemetry.current_context() is None
    with telemetry.span("evolink.wait") as span:
        assert span is None


async def test_a_failed_task_makes_an_error_wait_span(mock: MockEvoLink, otel: Otel) -> None:
    async with traced(mock, otel) as client:
        task = await client.submit(
            MODEL, prompt="mock:fail=service_error", image_urls=WAN["image_urls"]
        )
        with pytest.raises(Exception, match="service_error"):
            await client.wait(task)
    (wait,) = otel.finished("evolink.wait")
    assert not wait.status.is_ok
    assert TaskStatus.FAILED.value not in (wait.attributes or {}).values()
