"""`evolink-async task`, `credits`, `mock-server` and `demo`, end to end."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from evolink_async import EvoLinkClient, RawRequest, Task
from evolink_async._cli import main


def submit_one(url: str, key: str) -> Task:
    async def run() -> Task:
        async with EvoLinkClient(key, base_url=url) as client:
            request = RawRequest(
                "wan2.5-image-to-video",
                {"prompt": "A cat", "image_urls": ["https://example.com/cat.png"]},
            )
            return await client.generate(request)

    return asyncio.run(run())


def test_task_and_credits_against_the_mock_server(
    mock_server: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    url, key = mock_server
    task = submit_one(url, key)

    assert main(["task", task.id, "--api-key", key, "--base-url", url]) == 0
    out = capsys.readouterr().out
    assert f"id         {task.id}" in out
    assert "status     completed" in out
    assert f"video      {task.video_url}" in out

    assert main(["task", task.id, "--json", "--api-key", key, "--base-url", url]) == 0
    assert '"status": "completed"' in capsys.readouterr().out

    assert main(["credits", "--api-key", key, "--base-url", url]) == 0
    assert re.search(r"remaining\s+\d", capsys.readouterr().out)


def test_api_errors_are_one_line_and_exit_1(
    mock_server: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    url, key = mock_server
    assert main(["task", "task-unified-1-nosuchid", "--api-key", key, "--base-url", url]) == 1
    err = capsys.readouterr().err
    assert "evolink-async task: HTTP 404" in err
    assert "Traceback" not in err

    assert main(["credits", "--api-key", "sk-bad-key-1234", "--base-url", url]) == 1
    err = capsys.readouterr().err
    assert "HTTP 401" in err and "sk-bad-key-1234" not in err


def test_missing_key_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("EVOLINK_API_KEY", raising=False)
    assert main(["credits", "--base-url", "http://127.0.0.1:9"]) == 1
    assert "EVOLINK_API_KEY" in capsys.readouterr().err


@pytest.mark.slow
def test_demo_runs_against_the_embedded_mock(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVOLINK_")}
    result = subprocess.run(
        [sys.executable, "-m", "evolink_async", "demo", "--output", str(tmp_path / "kept")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert re.search(r"(\d+) of (\d+) generations completed", result.stdout)
    assert "[content_policy_violation]" in result.stdout
    assert result.stderr == ""
    assert len(list((tmp_path / "kept" / "videos").glob("*.mp4"))) == 21
