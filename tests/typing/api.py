"""
The documented calls, as a type checker sees them: checked, never run.

`make types` runs pyright in strict mode over this file (and mypy --strict
with the rest of the tests), so every call the README shows, every model by
keyword and by request object, batch job dicts, `Job(...)` and the errors'
attributes must type-check as written, with the types `assert_type` says.
Nothing here is collected by pytest (no `test_` prefix; see conftest.py).
Calls that must *not* type-check are in `bad_calls.py`, checked by
tests/test_typing.py.
"""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import AsyncIterator, Mapping
from typing import Any, assert_type, cast

from evolink_async import (
    MODELS,
    APIConnectionError,
    APIError,
    BatchRun,
    BatchStats,
    EvoLinkClient,
    HappyHorseImageToVideo,
    HappyHorseImageToVideoParams,
    Job,
    JobDict,
    JobOutcome,
    ModelId,
    PollPolicy,
    Problem,
    RateLimitError,
    RawRequest,
    Request,
    RetryPolicy,
    SeedanceFastImageToVideo,
    SeedanceImageToVideo,
    SeedanceImageToVideoJobDict,
    SeedanceImageToVideoParams,
    Task,
    TaskCancelledError,
    TaskFailedError,
    TaskStatus,
    ValidationError,
    WaitTimeoutError,
    Wan25ImageToVideo,
    Wan25ImageToVideoJobDict,
    Wan25ImageToVideoParams,
    Wan27ImageToVideo,
    Wan27ImageToVideoParams,
)
from evolink_async import models as models_module

IMAGE = "https://example.com/first-frame.jpg"


async def quickstart() -> None:
    async with EvoLinkClient() as client:
        task = await client.generate(
            "seedance-2.0-image-to-video",
            prompt="The camera slowly pushes in and the grass sways",
            image_urls=[IMAGE],
            duration=5,
        )
        assert_type(task, Task)
        assert_type(task.video_url, str | None)
        path = await client.download(task, "videos/")
        assert_type(path, pathlib.Path)


async def every_model_by_keyword(client: EvoLinkClient) -> None:
    await client.submit(
        "seedance-2.0-image-to-video",
        prompt="A paper boat",
        image_urls=[IMAGE, pathlib.Path("last.png")],
        duration=6,
        quality="480p",
        aspect_ratio="adaptive",
        generate_audio=False,
        callback_url="https://api.example.com/evolink/callback",
    )
    await client.submit(
        "seedance-2.0-fast-image-to-video",
        prompt="The camera slowly zooms in",
        image_urls=(IMAGE,),
        quality="720p",
        aspect_ratio="9:16",
        idempotency_key="my-own-key-0000000001",
    )
    await client.submit(
        "happyhorse-1.0-image-to-video",
        image_urls=[IMAGE],
        prompt=None,
        quality="1080p",
        duration=8,
        seed=42,
    )
    await client.submit(
        "wan2.7-image-to-video",
        generation_mode="first_last_frame",
        prompt="The door slowly opens",
        negative_prompt="Blurry",
        image_start=pathlib.Path("door-closed.png"),
        image_end="https://example.com/door-open.jpg",
        audio_urls=["https://example.com/a.mp3"],
        quality="1080p",
        duration=5.0,
        prompt_extend=True,
    )
    await client.submit(
        "wan2.7-image-to-video",
        generation_mode="video_continuation",
        video_urls=["https://example.com/clip.mp4"],
        duration=10,
    )
    task = await client.generate(
        "wan2.5-image-to-video",
        prompt="A cat playing the piano",
        image_urls=[IMAGE],
        duration=10,
        timeout=600,
        on_progress=lambda snapshot: print(snapshot.progress),
    )
    assert_type(task.status, TaskStatus)


async def every_model_by_request_object(client: EvoLinkClient) -> None:
    requests: list[Request] = [
        SeedanceImageToVideo(prompt="x", image_urls=[IMAGE], quality="720p"),
        SeedanceFastImageToVideo(prompt="x", image_urls=[IMAGE], aspect_ratio="1:1"),
        HappyHorseImageToVideo(image_urls=[IMAGE], quality="720p", seed=7),
        Wan27ImageToVideo(generation_mode="first_frame", image_start=IMAGE),
        Wan25ImageToVideo(prompt="x", image_urls=[IMAGE], duration=5),
        RawRequest("example-video-3.0", {"prompt": "A kite", "image_urls": [IMAGE]}),
    ]
    for request in requests:
        assert_type(request.model, str)
        assert_type(await client.submit(request), Task)
    # The classes by name, as the examples pass them.
    await client.submit(SeedanceImageToVideo(prompt="x", image_urls=[IMAGE]))
    await client.generate(Wan27ImageToVideo(image_start=IMAGE), timeout=60)
    await client.generate(RawRequest("any-model"), idempotency_key="k" * 16)
    # Fields read back from a request, with the types of the class.
    request = SeedanceImageToVideo(prompt="x", image_urls=[IMAGE])
    assert_type(request.image_urls, tuple[str | pathlib.Path, ...])
    assert_type(request.duration, int | None)


async def params_as_typed_dicts(client: EvoLinkClient) -> None:
    seedance: SeedanceImageToVideoParams = {"prompt": "x", "image_urls": [IMAGE]}
    horse: HappyHorseImageToVideoParams = {"image_urls": [IMAGE], "quality": "720p"}
    wan: Wan27ImageToVideoParams = {"generation_mode": "first_frame", "image_start": IMAGE}
    await client.submit("seedance-2.0-image-to-video", **seedance)
    await client.submit("happyhorse-1.0-image-to-video", **horse)
    await client.generate("wan2.7-image-to-video", **wan, timeout=30)
    # Keywords built at run time: any `dict[str, Any]` goes through, and is
    # checked when the request is built.
    fields: dict[str, Any] = {"prompt": "x", "image_urls": [IMAGE]}
    await client.submit("wan2.5-image-to-video", **fields)


async def a_model_id_known_at_run_time(client: EvoLinkClient, body: Mapping[str, Any]) -> None:
    # From a request body or a config file: the cast only tells the type
    # checker; `submit` checks the id (an unknown one is a ValidationError).
    model = cast(ModelId, body["model"])
    fields: dict[str, Any] = dict(body["fields"])
    await client.submit(model, **fields)
    assert model in MODELS
    assert models_module.MODELS is MODELS


async def many_at_once(client: EvoLinkClient) -> None:
    jobs: list[Wan25ImageToVideoParams] = [
        {
            "prompt": f"Scene {n}: a paper boat on a rainy street",
            "image_urls": [f"https://example.com/{n}.png"],
        }
        for n in range(50)
    ]
    tasks = await asyncio.gather(
        *(client.generate("wan2.5-image-to-video", **job) for job in jobs),
        return_exceptions=True,
    )
    print(sum(isinstance(t, Task) for t in tasks), "of", len(jobs), "completed")


async def batch_job_dicts(client: EvoLinkClient) -> None:
    jobs: list[JobDict] = [
        {
            "id": "clip-1",
            "model": "wan2.5-image-to-video",
            "prompt": "A cat playing piano",
            "image_urls": ["https://example.com/cat.png"],
            "metadata": {"customer": 42},
        },
        {"model": "seedance-2.0-image-to-video", "prompt": "x", "image_urls": [IMAGE]},
        {"id": 7, "model": "wan2.7-image-to-video", "image_start": IMAGE},
    ]
    one: Wan25ImageToVideoJobDict = {
        "model": "wan2.5-image-to-video",
        "prompt": "x",
        "image_urls": [],
    }
    other: SeedanceImageToVideoJobDict = {
        "model": "seedance-2.0-image-to-video",
        "prompt": "x",
        "image_urls": [IMAGE],
        "quality": "480p",
    }
    run = client.batch([*jobs, one, other], concurrency=8, journal="jobs.journal")
    assert_type(run, BatchRun)
    async for outcome in run:
        assert_type(outcome, JobOutcome)
        print(outcome.job_id, "ok" if outcome.ok else outcome.error)
    assert_type(run.stats, BatchStats)
    # Job objects, dicts read from JSON and async iterables are taken too.
    mixed: list[Job | Mapping[str, Any]] = [
        Job(SeedanceImageToVideo(prompt="x", image_urls=[IMAGE])),
        Job(RawRequest("m", {"prompt": "x"}), id="raw", metadata={"n": 1}),
        {"model": "wan2.5-image-to-video", "prompt": "x", "image_urls": [IMAGE]},
    ]
    outcomes = await client.batch(mixed, download_dir="out/").results()
    assert_type(outcomes, list[JobOutcome])

    async def lazily() -> AsyncIterator[JobDict]:
        yield {"model": "happyhorse-1.0-image-to-video", "image_urls": [IMAGE]}

    await client.batch(lazily()).results()


def jobs_objects() -> None:
    job = Job(SeedanceImageToVideo(prompt="x", image_urls=[IMAGE]))
    assert_type(job.request, Request)
    assert_type(job.id, str | None)
    Job(Wan27ImageToVideo(image_start=IMAGE), id="wan", metadata={"k": "v"})
    Job(RawRequest("any-model", {"prompt": "x"}))


async def errors_attributes(client: EvoLinkClient) -> None:
    try:
        await client.generate("wan2.5-image-to-video", prompt="x", image_urls=[IMAGE])
    except ValidationError as exc:
        assert_type(exc.problems, tuple[Problem, ...])
        assert_type(exc.model, str | None)
        for problem in exc.problems:
            assert_type(problem.field, str | None)
            assert_type(problem.value, object)
            assert_type(problem.rule, str)
    except RateLimitError as exc:
        assert_type(exc.retry_after, float | None)
        assert_type(exc.status, int)
    except APIError as exc:
        assert_type(exc.status, int)
        assert_type(exc.code, str | int | None)
        assert_type(exc.message, str)
        assert_type(exc.param, str | None)
        assert_type(exc.request_id, str | None)
    except APIConnectionError as exc:
        print(exc)
    except TaskFailedError as exc:
        assert_type(exc.task, Task)
        assert_type(exc.code, str | None)
        assert_type(exc.message, str)
        assert_type(exc.retryable, bool)
    except TaskCancelledError as exc:
        assert_type(exc.task, Task)
    except WaitTimeoutError as exc:
        assert_type(exc.task, Task | None)
        assert_type(exc.task_id, str)


def configuration() -> EvoLinkClient:
    policy = PollPolicy(
        min_interval=2.0,
        max_interval=60.0,
        max_polls_per_second=20.0,
        batch_endpoint=False,
    )
    return EvoLinkClient(poll=policy, retry=RetryPolicy(), max_concurrency=8, timeout=30.0)
