"""
The one-job commands (`generate`, `wait`, `download`), key handling, and what
every command does on a closed pipe, on Ctrl-C and in `--help`.

The commands run against a `MockEvoLink` served by the test's own loop: in a
thread (`main(...)`, output captured) or as a process (for signals and
pipes), and the tests check what the mock saw as well as what was printed.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from evolink_async import RawRequest
from evolink_async._cli import main
from evolink_async._cli.apikey import KEY_WARNING
from evolink_async._cli.main import _parser
from evolink_async.testing import MockEvoLink

from .conftest import make_client
from .test_uploads import png

pytestmark = pytest.mark.anyio

CREATE = "POST /v1/videos/generations"
#: The mock's clock: a 120 s task takes 0.12 s; polling is scaled to match.
TIME_SCALE = 0.001
CAT = "https://example.com/cat.png"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, mock: MockEvoLink) -> MockEvoLink:
    """The environment a user would set for the mock: key and both base URLs."""
    monkeypatch.setenv("EVOLINK_API_KEY", mock.api_key)
    monkeypatch.setenv("EVOLINK_BASE_URL", mock.url)
    monkeypatch.setenv("EVOLINK_FILES_BASE_URL", mock.url)
    return mock


@pytest.fixture
async def mock() -> Any:
    async with MockEvoLink(time_scale=TIME_SCALE, seed=4) as server:
        yield server


async def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`evolink-async ARGS` in a thread (the mock keeps serving here); (code, out, err)."""
    code = await asyncio.to_thread(main, [*args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def follow_args() -> list[str]:
    return ["--time-scale", str(TIME_SCALE)]


# ---------------------------------------------------------------- generate


async def test_generate_uploads_a_local_image_and_saves_the_video(
    env: MockEvoLink,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mock = env
    monkeypatch.chdir(tmp_path)
    Path("frame.png").write_bytes(png())
    code, out, err = await run(
        capsys,
        "generate",
        "wan2.5-image-to-video",
        "--prompt",
        "A paper boat drifts",
        "--image",
        "frame.png",
        "--field",
        "duration=10",
        "--download",
        "videos",
        *follow_args(),
    )
    assert code == 0, err
    (task_id,) = mock.tasks
    saved = Path(out.strip())
    assert saved == Path("videos") / f"{task_id}.mp4"
    assert saved.read_bytes() == mock.video_bytes(task_id)
    # The server saw one upload, then one create naming the uploaded file.
    assert mock.stats.uploads == 1 and mock.stats.requests[CREATE] == 1
    body = mock.tasks[task_id].body
    assert body["duration"] == 10 and body["prompt"] == "A paper boat drifts"
    (url,) = body["image_urls"]
    assert url.startswith(f"{mock.url}/files/uploads/") and url.endswith("/frame.png")
    # Progress on stderr, plain lines (stderr is no terminal here).
    assert f"created {task_id} (wan2.5-image-to-video" in err
    assert re.search(rf"^\[[\d.]+s\] {task_id}: completed 100%$", err, re.M)
    assert mock.api_key not in out + err


async def test_generate_puts_images_and_fields_where_the_model_takes_them(
    env: MockEvoLink, capsys: pytest.CaptureFixture[str]
) -> None:
    mock = env
    second = "https://example.com/last.png"
    code, out, err = await run(
        capsys,
        "generate",
        "wan2.7-image-to-video",
        "--prompt",
        "Day to night",
        "--image",
        CAT,
        "--image",
        second,
        "--field",
        "generation_mode=first_last_frame",
        "--field",
        "prompt_extend=false",
        "--field",
        "seed=7",
        "--json",
        *follow_args(),
    )
    assert code == 0, err
    record = json.loads(out)
    body = mock.tasks[record["task_id"]].body
    assert body["image_start"] == CAT and body["image_end"] == second
    assert body["prompt_extend"] is False and body["seed"] == 7
    assert record["status"] == "completed" and record["video_url"].startswith(mock.url)
    assert record["task"]["id"] == record["task_id"]


async def test_generate_refuses_bad_fields_before_sending_anything(
    env: MockEvoLink, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    mock = env
    cases: list[tuple[list[str], list[str]]] = [
        (
            ["wan2.5-image-to-video", "--prompt", "x", "--image", CAT, "--field", "duration=7"],
            ["duration=7: must be 5 or 10"],
        ),
        (
            ["wan2.5-image-to-video", "--image", CAT, "--field", "sound=on", "--field", "seed"],
            ["--field 'seed': write NAME=VALUE"],
        ),
        (
            ["wan2.7-image-to-video", "--image", CAT, "--image", CAT, "--image", CAT],
            ["takes at most 2 images (image_start, image_end)"],
        ),
        (["wan2.5-image-to-vide", "--prompt", "x"], ["did you mean 'wan2.5-image-to-video'?"]),
        (
            ["wan2.5-image-to-video", "--prompt", "x", "--image", str(tmp_path / "none.png")],
            ["none.png"],
        ),
        (["wan2.5-image-to-video", "--prompt", "x", "--field", "prompt=y"], ["give one of them"]),
    ]
    for args, wanted in cases:
        code, out, err = await run(capsys, "generate", *args)
        assert code == 2, (args, err)
        assert out == ""
        for text in wanted:
            assert text in err, (args, err)
        assert "Traceback" not in err
    assert sum(mock.stats.requests.values()) == 0


async def test_generate_reports_a_failed_task_and_exits_1(
    env: MockEvoLink, capsys: pytest.CaptureFixture[str]
) -> None:
    prompt = "mock:fail=content_policy_violation no"
    code, out, err = await run(
        capsys, "generate", "wan2.5-image-to-video", "--prompt", prompt, "--image", CAT,
        *follow_args(),
    )  # fmt: skip
    assert code == 1
    (task_id,) = env.tasks
    assert f"{task_id} failed: [content_policy_violation]" in err
    assert out == ""


async def test_generate_timeout_leaves_the_task_and_says_how_to_follow_it(
    env: MockEvoLink, capsys: pytest.CaptureFixture[str]
) -> None:
    # Ten times longer than the scaled poll clock expects: still running at the timeout.
    code, _, err = await run(
        capsys, "generate", "wan2.5-image-to-video", "--prompt", "x", "--image", CAT,
        "--field", "duration=10", "--timeout", "0.05", "--time-scale", "0.5",
    )  # fmt: skip
    assert code == 1
    (task_id,) = env.tasks
    assert f"evolink-async wait {task_id} --time-scale 0.5" in err
    assert env.tasks[task_id].final_status == "completed"  # the task itself goes on


# ---------------------------------------------------------------- wait, download


async def test_wait_and_download_a_task_made_elsewhere(
    env: MockEvoLink, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    mock = env
    code, out, _ = await run(
        capsys, "generate", "happyhorse-1.0-image-to-video", "--image", CAT, "--timeout",
        "0.001", "--time-scale", "1",
    )  # fmt: skip
    assert code == 1  # stopped following at once; the task goes on
    (task_id,) = mock.tasks

    # A task with no video: nothing written.
    prompt = "mock:fail=content_policy_violation no"
    code, _, _ = await run(
        capsys, "generate", "wan2.5-image-to-video", "--prompt", prompt, "--image", CAT,
        *follow_args(),
    )  # fmt: skip
    failed = list(mock.tasks)[1]
    code, out, err = await run(capsys, "download", failed, str(tmp_path / "none.mp4"))
    assert code == 1 and "has no video: it is failed" in err
    assert not (tmp_path / "none.mp4").exists()

    code, out, err = await run(capsys, "wait", task_id, "--json", *follow_args())
    assert code == 0, err
    assert json.loads(out)["status"] == "completed"

    dest = tmp_path / "clip.mp4"
    code, out, err = await run(capsys, "download", task_id, str(dest))
    assert code == 0, err
    assert out.strip() == str(dest) and dest.read_bytes() == mock.video_bytes(task_id)
    code, out, err = await run(capsys, "download", task_id, str(dest))
    assert code == 2 and "add --overwrite" in err
    code, out, _ = await run(capsys, "download", task_id, f"{tmp_path}/folder/", "--json")
    assert code == 0
    record = json.loads(out)
    assert record["path"] == str(tmp_path / "folder" / f"{task_id}.mp4")
    assert record["bytes"] == len(mock.video_bytes(task_id))

    code, _, err = await run(capsys, "wait", "task-unified-1-nosuchid", *follow_args())
    assert code == 1 and "not found" in err


# ---------------------------------------------------------------- keys


async def test_key_from_a_file_the_environment_or_argv_with_a_warning(
    env: MockEvoLink,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(env.api_key + "\n")
    monkeypatch.delenv("EVOLINK_API_KEY")
    code, _, err = await run(capsys, "credits", "--api-key-file", str(key_file))
    assert code == 0 and err == ""
    code, _, err = await run(capsys, "credits", "--api-key", env.api_key)
    assert code == 0 and KEY_WARNING in err and env.api_key not in err
    code, _, err = await run(capsys, "generate", "wan2.5-image-to-video", "--prompt", "x")
    assert code == 2 and "no API key: set EVOLINK_API_KEY or pass --api-key-file" in err
    empty = tmp_path / "empty"
    empty.write_text("\n")
    for args, problem in [
        (["--api-key-file", str(empty)], "holds no key"),
        (["--api-key-file", str(tmp_path / "missing")], "cannot read"),
        (["--api-key-file", str(key_file), "--api-key", "k"], "give one of them"),
    ]:
        code, _, err = await run(capsys, "wait", "task-unified-1-abcdefgh", *args)
        assert code == 2 and problem in err, err
    before = env.stats.requests.copy()
    code, out, err = await run(capsys, "credits", "--json", "--api-key-file", str(key_file))
    assert code == 0 and json.loads(out)["user"]["remaining_credits"] > 0
    assert env.stats.requests["GET /v1/credits"] == before["GET /v1/credits"] + 1


# ---------------------------------------------------------------- job files


async def test_job_files_name_local_images_relative_to_the_file(
    env: MockEvoLink,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mock = env
    project = tmp_path / "project"
    (project / "frames").mkdir(parents=True)
    (project / "frames" / "boat.png").write_bytes(png())
    jobs = project / "jobs.jsonl"
    job = {"id": "boat", "model": "wan2.5-image-to-video", "prompt": "x"}
    lines = [
        {**job, "image_urls": ["frames/boat.png"]},
        {**job, "id": "url", "image_urls": [CAT]},
        {**job, "id": "missing", "image_urls": ["frames/none.png"]},
    ]
    jobs.write_text("".join(json.dumps(line) + "\n" for line in lines))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    code, out, _ = await run(capsys, "validate", str(jobs))
    assert code == 1
    assert "jobs.jsonl:3: id=missing: image_urls[0]=" in out and "none.png" in out
    assert "3 jobs, 2 valid, 1 invalid" in out

    code, out, err = await run(capsys, "batch", str(jobs), *follow_args(), "--out", "out.jsonl")
    assert code == 1, err  # the missing file's line is skipped
    records = {r["job_id"]: r for r in map(json.loads, Path("out.jsonl").read_text().splitlines())}
    assert records["boat"]["status"] == records["url"]["status"] == "completed"
    assert mock.stats.uploads == 1
    uploaded = mock.tasks[records["boat"]["task_id"]].body["image_urls"][0]
    assert uploaded.startswith(f"{mock.url}/files/uploads/") and uploaded.endswith("/boat.png")
    assert mock.tasks[records["url"]["task_id"]].body["image_urls"] == [CAT]


# ---------------------------------------------------------------- every command


def test_every_command_has_a_description() -> None:
    parser = _parser()
    commands = next(a for a in parser._actions if isinstance(a.choices, dict))
    assert isinstance(commands.choices, dict)
    choices: dict[str, Any] = dict(commands.choices)
    for name in (
        "generate", "wait", "download", "batch", "demo", "validate", "models", "task",
        "credits", "mock-server", "journal", "report",
    ):  # fmt: skip
        assert name in choices, name
    for name, sub in choices.items():
        assert sub.description and len(sub.description) > 40, name
        for action in sub._actions:
            if action.choices and isinstance(action.choices, dict):
                for inner, subsub in action.choices.items():
                    assert subsub.description, f"{name} {inner}"


def cli(*args: str, **options: Any) -> subprocess.Popen[str]:
    """`python -m evolink_async ARGS`, output buffered as a user's is (no PYTHONUNBUFFERED)."""
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("EVOLINK_") and k != "PYTHONUNBUFFERED"
    }
    return subprocess.Popen(
        [sys.executable, "-m", "evolink_async", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**base, **options.pop("env", {})},
        **options,
    )


@pytest.mark.parametrize(
    "args",
    [
        ["models"],
        ["models", "wan2.5-image-to-video"],  # less than a buffer: met at the last flush
        ["models", "--json"],
        ["validate", "{jobs}"],
        ["demo", "--write-jobs", "-"],
    ],
)
def test_a_closed_pipe_ends_any_command_with_one_line_and_141(
    args: list[str], tmp_path: Path
) -> None:
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text("".join("{not json\n" for _ in range(20_000)))
    process = cli(*[a.replace("{jobs}", str(jobs)) for a in args])
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # `| head` gone before the command writes
    err = process.stderr.read()
    process.stderr.close()
    assert process.wait(timeout=60) == 141
    assert err.splitlines() == [f"evolink-async {args[0]}: output closed early (broken pipe)"]


@pytest.fixture
async def slow_mock() -> Any:
    """The mock on a real clock: its tasks run for minutes, so Ctrl-C comes while they run."""
    async with MockEvoLink(time_scale=1.0, seed=4) as server:
        yield server


async def test_ctrl_c_ends_generate_with_one_line_and_the_way_on(slow_mock: MockEvoLink) -> None:
    mock = slow_mock
    env = {
        "EVOLINK_API_KEY": mock.api_key,
        "EVOLINK_BASE_URL": mock.url,
        "EVOLINK_FILES_BASE_URL": mock.url,
    }
    args = ["generate", "wan2.5-image-to-video", "--prompt", "x", "--image", CAT, "--field"]
    process = cli(*args, "duration=10", "--time-scale", "1", env=env)
    assert process.stderr is not None and process.stdout is not None
    first = await asyncio.to_thread(process.stderr.readline)
    assert first.startswith("created task-unified-"), first
    task_id = first.split()[1]
    await asyncio.sleep(0.3)
    process.send_signal(signal.SIGINT)
    code = await asyncio.to_thread(process.wait, 30)
    rest = process.stderr.read()
    process.stderr.close()
    process.stdout.close()
    assert code == 130
    last = rest.splitlines()[-1]
    assert last == (
        f"evolink-async generate: interrupted; {task_id} goes on on the server: "
        f"evolink-async wait {task_id} --time-scale 1"
    )
    assert "Traceback" not in rest and "Unclosed" not in rest
    assert mock.stats.tasks_created == 1


async def test_ctrl_c_ends_wait_with_one_line_and_the_way_on(slow_mock: MockEvoLink) -> None:
    mock = slow_mock
    async with make_client(mock) as client:
        request = RawRequest("wan2.5-image-to-video", {"prompt": "x", "image_urls": [CAT]})
        task = await client.submit(request)
    env = {"EVOLINK_API_KEY": mock.api_key, "EVOLINK_BASE_URL": mock.url}
    process = cli("wait", task.id, "--time-scale", "1", env=env)
    assert process.stderr is not None and process.stdout is not None
    first = await asyncio.to_thread(process.stderr.readline)
    assert first == f"following {task.id}\n"
    await asyncio.sleep(0.3)
    process.send_signal(signal.SIGINT)
    code = await asyncio.to_thread(process.wait, 30)
    rest = process.stderr.read()
    process.stderr.close()
    process.stdout.close()
    assert code == 130
    assert rest.splitlines()[-1] == (
        f"evolink-async wait: interrupted; the task goes on on the server: "
        f"evolink-async wait {task.id} --time-scale 1"
    )
    assert "Traceback" not in rest and "Unclosed" not in rest


def test_ctrl_c_ends_any_other_command_with_one_line_and_130() -> None:
    process = cli("validate", "-", stdin=subprocess.PIPE)  # waits for its stdin
    assert process.stdin is not None and process.stderr is not None
    assert process.stdout is not None
    # Interrupt it once it blocks in read(0, ...): past start-up, in `validate`
    # (read is system call 0 on x86-64, 63 on arm64).
    syscall = Path(f"/proc/{process.pid}/syscall")
    deadline = time.monotonic() + 30
    while not syscall.read_text().startswith(("0 0x0 ", "63 0x0 ")):
        assert time.monotonic() < deadline, "validate never read its stdin"
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 130
    err = process.stderr.read()
    for stream in (process.stdin, process.stdout, process.stderr):
        stream.close()
    assert err.splitlines() == ["evolink-async validate: interrupted"]


# ---------------------------------------------------------------- mock-server, demo


def test_mock_server_prints_its_urls_takes_a_key_and_faults() -> None:
    process = cli(
        "mock-server", "--api-key", "sk-test-key-42", "--fault-rate", "0.5", "--faults",
        "server_error", "--seed", "3",
    )  # fmt: skip
    assert process.stdout is not None and process.stderr is not None
    try:
        lines = [process.stdout.readline() for _ in range(3)]
        found = re.search(
            r"EVOLINK_BASE_URL=(\S+) EVOLINK_FILES_BASE_URL=(\S+) EVOLINK_API_KEY=(\S+)", lines[1]
        )
        assert found, lines
        url, files_url, key = found.groups()
        assert files_url == url and key == "sk-test-key-42"
        assert lines[2].startswith("Faults: 50% of API requests (server_error)")
        statuses = []
        for _ in range(20):
            headers = {"Authorization": f"Bearer {key}"}
            request = urllib.request.Request(f"{url}/v1/credits", headers=headers)  # noqa: S310
            try:
                with urllib.request.urlopen(request, timeout=10) as reply:  # noqa: S310
                    statuses.append(reply.status)
            except urllib.error.HTTPError as exc:
                statuses.append(exc.code)
        assert 200 in statuses and any(500 <= s < 600 for s in statuses), statuses
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
        process.stdout.close()
        process.stderr.close()
    bad = subprocess.run(
        [sys.executable, "-m", "evolink_async", "mock-server", "--faults", "meteor"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2 and "the kinds are rate_limit, server_error" in bad.stderr


def test_demo_writes_the_example_jobs_and_never_over_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from evolink_async._cli.demo import example_jobs

    target = tmp_path / "my-jobs.jsonl"
    assert main(["demo", "--write-jobs", str(target)]) == 0
    assert target.read_text() == example_jobs()
    assert f"evolink-async batch {target} --mock" in capsys.readouterr().out
    assert main(["validate", str(target)]) == 0
    capsys.readouterr()
    target.write_text("mine")
    assert main(["demo", "--write-jobs", str(target)]) == 2
    assert "exists" in capsys.readouterr().err and target.read_text() == "mine"
