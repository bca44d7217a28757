"""
One reader of a job dict: `read_job`, `client.batch`, `evolink-async validate`
and `evolink-async batch` accept and refuse the same jobs, for the same reasons.

Every case of `CASES` goes through all of them; each must call the same cases
bad, report the same problems (`str(problem)`: `field=value: rule`), and the
server must see a create for the good cases only.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from evolink_async import ValidationError
from evolink_async._batch.jobs import read_job
from evolink_async._cli import main
from evolink_async.testing import MockEvoLink

from .conftest import TIME_SCALE, make_client

CREATE = "POST /v1/videos/generations"
IMAGE = "https://example.com/frame.png"


def wan25(prompt: str, **fields: Any) -> dict[str, Any]:
    return {"model": "wan2.5-image-to-video", "prompt": prompt, "image_urls": [IMAGE], **fields}


#: (name, job dict, whether it is a job). Every prompt is unique, so each
#: create the server sees names its case, and no two id-less jobs collide.
CASES: list[tuple[str, dict[str, Any], bool]] = [
    ("blank id", {"id": "  ", **wan25("blank id")}, False),
    ("empty id", {"id": "", **wan25("empty id")}, False),
    ("float id", {"id": 1.5, **wan25("float id")}, False),
    ("bool id", {"id": True, **wan25("bool id")}, False),
    ("list id", {"id": ["a"], **wan25("list id")}, False),
    ("missing model", {"id": "no-model", "prompt": "missing model"}, False),
    ("model not a string", {"id": "model-5", "model": 5, "prompt": "model 5"}, False),
    ("unknown model", {"id": "veo", "model": "veo-3-text-to-video", "prompt": "veo"}, False),
    ("metadata a list", {"id": "meta-list", **wan25("meta list"), "metadata": [1]}, False),
    ("metadata a string", {"id": "meta-str", **wan25("meta str"), "metadata": "x"}, False),
    ("unknown field", {"id": "typo", **wan25("typo"), "durations": 5}, False),
    ("broken rule", {"id": "wan-7s", **wan25("seven seconds"), "duration": 7}, False),
    (
        "broken rule, other model",
        {"id": "hh-16s", "model": "happyhorse-1.0-image-to-video", "image_urls": [IMAGE]}
        | {"duration": 16, "prompt": "sixteen seconds"},
        False,
    ),
    (
        "missing required field",
        {"id": "no-prompt", "model": "seedance-2.0-image-to-video", "image_urls": [IMAGE]},
        False,
    ),
    (
        "several problems",
        {"id": "many", **wan25("many"), "metadata": 3, "duration": 7, "extra": True},
        False,
    ),
    ("string id", {"id": "wan-ok", **wan25("string id")}, True),
    ("int id", {"id": 7, **wan25("int id")}, True),
    ("null id is no id", {"id": None, **wan25("null id")}, True),
    ("no id", wan25("no id"), True),
    ("metadata an object", {"id": "meta-ok", **wan25("meta ok"), "metadata": {"a": 1}}, True),
    (
        "seedance, every field",
        {
            "id": "seedance-ok",
            "model": "seedance-2.0-image-to-video",
            "prompt": "seedance full",
            "image_urls": [IMAGE, IMAGE],
            "duration": 4,
            "quality": "480p",
            "aspect_ratio": "9:16",
            "generate_audio": False,
        },
        True,
    ),
    (
        "happyhorse",
        {
            "id": "hh-ok",
            "model": "happyhorse-1.0-image-to-video",
            "image_urls": [IMAGE],
            "prompt": "happyhorse",
            "seed": 42,
        },
        True,
    ),
    (
        "wan2.7 first and last frame",
        {
            "id": "wan27-ok",
            "model": "wan2.7-image-to-video",
            "prompt": "wan 2.7",
            "image_start": IMAGE,
            "image_end": IMAGE,
        },
        True,
    ),
]
BAD = [index for index, (_, _, ok) in enumerate(CASES) if not ok]
GOOD_PROMPTS = {job["prompt"] for _, job, ok in CASES if ok}


def expected_problems(job: dict[str, Any]) -> list[str]:
    """What `read_job` says is wrong with `job` (empty when it is a job)."""
    try:
        read_job(job)
    except ValidationError as exc:
        return [str(problem) for problem in exc.problems]
    return []


def write_cases(path: Path) -> Path:
    """One case per line, so line N is `CASES[N - 1]`."""
    path.write_text("".join(json.dumps(job) + "\n" for _, job, _ in CASES), encoding="utf-8")
    return path


def created_prompts(mock: MockEvoLink) -> set[str]:
    return {str(task.body.get("prompt")) for task in mock.tasks.values()}


def assert_server_saw_only_the_good_jobs(mock: MockEvoLink) -> None:
    good = len(GOOD_PROMPTS)
    assert mock.stats.requests[CREATE] == good
    assert mock.stats.tasks_created == good
    assert created_prompts(mock) == GOOD_PROMPTS


@pytest.mark.parametrize(("name", "job", "ok"), CASES, ids=[name for name, _, _ in CASES])
def test_read_job_verdict(name: str, job: dict[str, Any], ok: bool) -> None:
    if ok:
        assert read_job(job).request.model == job["model"]
    else:
        with pytest.raises(ValidationError) as caught:
            read_job(job)
        assert caught.value.problems, name


def test_every_problem_of_a_job_is_reported_at_once() -> None:
    (job,) = [job for name, job, _ in CASES if name == "several problems"]
    problems = expected_problems(job)
    assert sorted(p.split("=")[0] for p in problems) == ["duration", "extra", "metadata"]


@pytest.mark.anyio
async def test_client_batch_agrees(mock: MockEvoLink) -> None:
    async with make_client(mock) as client:
        outcomes = await client.batch([job for _, job, _ in CASES]).results()

    assert len(outcomes) == len(CASES)
    for (name, job, ok), outcome in zip(CASES, outcomes, strict=True):
        if ok:
            assert outcome.ok, (name, outcome.error)
            assert outcome.task is not None
            assert mock.tasks[outcome.task.id].body["prompt"] == job["prompt"], name
        else:
            assert outcome.task is None, name
            assert isinstance(outcome.error, ValidationError), (name, outcome.error)
            assert [str(p) for p in outcome.error.problems] == expected_problems(job), name
    assert_server_saw_only_the_good_jobs(mock)


def test_validate_agrees(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_cases(tmp_path / "jobs.jsonl")
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out

    printed: dict[int, list[str]] = {}
    prefix = f"{path}:"
    for line in out.splitlines():
        if line.startswith(prefix):
            where, _, rest = line[len(prefix) :].partition(": ")
            printed.setdefault(int(where), []).append(rest)
    assert sorted(printed) == [index + 1 for index in BAD]
    for number, lines in printed.items():
        name, job, _ = CASES[number - 1]
        problems = expected_problems(job)
        assert len(lines) == len(problems), name
        for line, problem in zip(lines, problems, strict=True):
            assert line.endswith(problem), (name, line, problem)
    good = len(CASES) - len(BAD)
    assert out.splitlines()[-1] == f"{len(CASES)} jobs, {good} valid, {len(BAD)} invalid"


@pytest.mark.anyio
async def test_batch_command_agrees(tmp_path: Path) -> None:
    path = write_cases(tmp_path / "jobs.jsonl")
    out = tmp_path / "results.jsonl"
    async with MockEvoLink(time_scale=TIME_SCALE) as mock:
        args = [
            "batch",
            str(path),
            "--out",
            str(out),
            "--api-key",
            mock.api_key,
            "--base-url",
            mock.url,
            "--time-scale",
            str(TIME_SCALE),
        ]
        # In a thread, so the mock keeps serving in this loop meanwhile.
        code = await asyncio.to_thread(main, args)
        assert code == 1  # bad lines were skipped
        assert_server_saw_only_the_good_jobs(mock)
        records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        tasks = dict(mock.tasks)

    invalid = {record["line"]: record for record in records if record["status"] == "invalid"}
    assert sorted(invalid) == [index + 1 for index in BAD]
    for number, record in invalid.items():
        name, job, _ = CASES[number - 1]
        assert record["error_message"] == "; ".join(expected_problems(job)), name
        assert record["task_id"] is None and not record["ok"], name
    ran = [record for record in records if record["status"] != "invalid"]
    assert all(record["status"] == "completed" for record in ran), ran
    assert {str(tasks[record["task_id"]].body["prompt"]) for record in ran} == GOOD_PROMPTS


@pytest.mark.anyio
async def test_strict_batch_refuses_the_same_lines_and_sends_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_cases(tmp_path / "jobs.jsonl")
    async with MockEvoLink(time_scale=TIME_SCALE) as mock:
        key = tmp_path / "key"
        key.write_text(mock.api_key)
        args = ["batch", str(path), "--strict", "--api-key-file", str(key), "--base-url", mock.url]
        assert await asyncio.to_thread(main, args) == 2
        assert sum(mock.stats.requests.values()) == 0
    err = capsys.readouterr().err
    reported = {int(line[len(f"{path}:") :].split(":")[0]) for line in err.splitlines()[:-1]}
    assert reported == {index + 1 for index in BAD}
    assert f"{len(BAD)} of {len(CASES)} jobs have problems; nothing was sent" in err
