# pyright: basic
"""
Calls a type checker must refuse, in pyright's basic mode (what an editor
shows): each line ending in `# error` must be reported as an error, and with
`# error: "TEXT"` one of its messages must hold TEXT; no other line may be.
(For a call no overload matches, pyright's message names the call, not the
keyword, so those lines expect an error only.)

Never run, and left out of `make types` and mypy: tests/test_typing.py runs
pyright on it and checks each expectation. The runtime refuses every one of
these too (a `ValidationError`); this file is about the editor saying so
first. One refusal no type can say: a plain string where a list goes
(`image_urls=URL`) is a `Sequence[str]` too; only the runtime check catches it.
"""

from __future__ import annotations

from evolink_async import (
    EvoLinkClient,
    HappyHorseImageToVideo,
    Job,
    JobDict,
    SeedanceImageToVideo,
    SeedanceImageToVideoJobDict,
    SeedanceImageToVideoParams,
    Wan25ImageToVideo,
    Wan25ImageToVideoJobDict,
    Wan27ImageToVideo,
)

IMAGE = "https://example.com/first-frame.jpg"


async def misspelt_fields(client: EvoLinkClient) -> None:
    await client.submit("seedance-2.0-image-to-video", promt="x", image_urls=[IMAGE])  # error
    await client.generate("wan2.5-image-to-video", prompt="x", image_url=[IMAGE])  # error
    await client.submit("happyhorse-1.0-image-to-video", image_urls=[IMAGE], seeed=1)  # error


async def values_no_rule_allows(client: EvoLinkClient) -> None:
    await client.submit("seedance-2.0-image-to-video", prompt="x", image_urls=[IMAGE], quality="720P")  # error: "720P"
    await client.submit("seedance-2.0-fast-image-to-video", prompt="x", image_urls=[IMAGE], aspect_ratio="2:1")  # error: "2:1"
    await client.generate("wan2.7-image-to-video", generation_mode="first-frame", image_start=IMAGE)  # error: "first-frame"
    await client.submit("wan2.5-image-to-video", prompt="x", image_urls=[IMAGE], duration=7)  # error: "Literal[7]"
    await client.submit("wan2.7-image-to-video", image_start=IMAGE, prompt_extend="yes")  # error: "prompt_extend"


async def unknown_model_ids(client: EvoLinkClient) -> None:
    await client.submit("seedance-2.0-image-2-video", prompt="x", image_urls=[IMAGE])  # error: "seedance-2.0-image-2-video"
    await client.generate("wan2.6-image-to-video", prompt="x", image_urls=[IMAGE])  # error: "wan2.6-image-to-video"


async def fields_of_another_model(client: EvoLinkClient) -> None:
    await client.submit("seedance-2.0-image-to-video", prompt="x", image_urls=[IMAGE], seed=1)  # error
    await client.submit("wan2.5-image-to-video", prompt="x", image_urls=[IMAGE], quality="720p")  # error


async def missing_required_fields(client: EvoLinkClient) -> None:
    await client.submit("seedance-2.0-image-to-video", image_urls=[IMAGE])  # error
    await client.generate("wan2.5-image-to-video", prompt="x")  # error
    await client.submit("happyhorse-1.0-image-to-video", prompt="x")  # error


async def request_objects(client: EvoLinkClient) -> None:
    SeedanceImageToVideo(promt="x", image_urls=[IMAGE])  # error: "promt"
    Wan25ImageToVideo(prompt="x", image_urls=[IMAGE], duration=7)  # error: "Literal[7]"
    SeedanceImageToVideo(prompt="x", image_urls=[IMAGE], quality="720P")  # error: "720P"
    Wan25ImageToVideo(image_urls=[IMAGE])  # error: "prompt"
    HappyHorseImageToVideo(image_urls=[IMAGE], quality="480p")  # error: "480p"
    Wan27ImageToVideo(generation_mode="continuation")  # error: "continuation"
    request = SeedanceImageToVideo(prompt="x", image_urls=[IMAGE])
    await client.submit(request, prompt="y")  # error
    await client.submit(b"not a request object")  # error: "Request"
    Job("seedance-2.0-image-to-video")  # error: "Request"


def job_dicts() -> list[JobDict]:
    # One dict per statement: in a list, pyright reports the whole list once.
    # Against the union, pyright names no key; against one model's dict it does.
    a: JobDict = {"model": "seedance-2.0-image-to-video", "promt": "x", "image_urls": [IMAGE]}  # error
    b: JobDict = {"model": "seedance-2.0-image-to-video", "prompt": "x", "image_urls": [IMAGE], "quality": "720P"}  # error
    c: JobDict = {"model": "wan2.6-image-to-video", "prompt": "x", "image_urls": [IMAGE]}  # error
    d: JobDict = {"model": "wan2.5-image-to-video", "prompt": "x"}  # error
    e: JobDict = {"model": "wan2.5-image-to-video", "prompt": "x", "image_urls": [IMAGE], "id": 1.5}  # error
    f: SeedanceImageToVideoParams = {"prompt": "x", "image_urls": [IMAGE], "seed": 1}  # error: "seed"
    h: SeedanceImageToVideoJobDict = {"model": "seedance-2.0-image-to-video", "prompt": "x", "image_urls": [IMAGE], "quality": "720P"}  # error: "720P"
    g: Wan25ImageToVideoJobDict = {"model": "wan2.7-image-to-video", "prompt": "x", "image_urls": [IMAGE]}  # error: "wan2.7-image-to-video"
    assert f
    return [a, b, c, d, e, g, h]
