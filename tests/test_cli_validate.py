"""`evolink-async validate` and `evolink-async models`, in-process and as a real process."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from evolink_async._cli import main
from evolink_async._cli.jobfile import check_job_lines
from evolink_async.models import MODELS

REPO = Path(__file__).resolve().parent.parent
URL = "https://cdn.example.com/cat.png"


def job(**fields: object) -> str:
    return json.dumps(fields, ensure_ascii=False)


# Line numbers are those of the file, comments and blank lines included.
MIXED_LINES = [
    "# jobs for the validate test",  # 1
    job(id="ok-1", model="seedance-2.0-image-to-video", prompt="zoom in", image_urls=[URL]),  # 2
    "",  # 3
    job(id="bad-duration", model="happyhorse-1.0-image-to-video", image_urls=[URL], duration=16),
    '{"id": "broken", "model": ',  # 5: invalid JSON
    job(id="ok-1", model="wan2.5-image-to-video", prompt="piano", image_urls=[URL]),  # 6: dup id
    job(id="mystery", model="veo-3-text-to-video", prompt="x"),  # 7: unknown model
    "   ",  # 8
    job(model="wan2.7-image-to-video", image_start=URL, duration=5),  # 9: ok, no id
    job(  # 10: two problems
        id="two",
        model="seedance-2.0-fast-image-to-video",
        prompt="x",
        image_urls=[URL],
        quality="1080p",
        generate_audio="true",
    ),
    "[1, 2, 3]",  # 11: not an object
    job(id="no-model", prompt="x"),  # 12
    job(id="typo", model="wan2.5-image-to-video", prompt="p", image_urls=[URL], durations=5),
    "  # an indented comment",  # 14
    job(id="ok-3", model="wan2.7-image-to-video", video_urls=["https://x.example/a.mp4"]),  # 15
]
EXPECTED_BAD_LINES = {4: 1, 5: 1, 6: 1, 7: 1, 10: 2, 11: 1, 12: 1, 13: 1}
SUMMARY = "11 jobs, 3 valid, 8 invalid"


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    path = tmp_path / "jobs.jsonl"
    path.write_text("\n".join(MIXED_LINES) + "\n", encoding="utf-8")
    return path


def problem_lines(output: str, path: Path) -> dict[int, list[str]]:
    """Line number -> the problems printed for it."""
    found: dict[int, list[str]] = {}
    prefix = f"{path}:"
    for line in output.splitlines():
        if line.startswith(prefix):
            number, _, rest = line[len(prefix) :].partition(":")
            found.setdefault(int(number), []).append(rest.strip())
    return found


def check_mixed_output(output: str, path: Path) -> None:
    found = problem_lines(output, path)
    assert {n: len(p) for n, p in found.items()} == EXPECTED_BAD_LINES
    assert found[4] == ["id=bad-duration: duration=16: must be an integer from 3 to 15"]
    assert found[5][0].startswith("invalid JSON:")
    assert found[6] == ["id=ok-1: duplicate id 'ok-1' (first used on line 2)"]
    assert "unknown model" in found[7][0]
    assert found[7][0].startswith("id=mystery: model='veo-3-text-to-video'")
    assert any("quality='1080p'" in p for p in found[10])
    assert any("generate_audio='true'" in p for p in found[10])
    assert "JSON object" in found[11][0]
    assert 'missing "model"' in found[12][0]
    assert "did you mean 'duration'" in found[13][0]
    assert output.splitlines()[-1] == SUMMARY


def test_validate_reports_every_bad_line(mixed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(mixed)]) == 1
    captured = capsys.readouterr()
    check_mixed_output(captured.out, mixed)
    assert captured.err == ""


def test_validate_as_a_process(mixed: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-m", "evolink_async", "validate", str(mixed)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    check_mixed_output(result.stdout, mixed)


def test_validate_all_good_exits_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "good.jsonl"
    lines = [
        job(id=f"job-{i}", model="wan2.5-image-to-video", prompt="p", image_urls=[URL])
        for i in range(50)
    ]
    path.write_text("\n".join(lines), encoding="utf-8")  # no final newline
    assert main(["validate", str(path)]) == 0
    assert capsys.readouterr().out == "50 jobs, 50 valid, 0 invalid\n"


def test_validate_empty_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("# nothing yet\n\n", encoding="utf-8")
    assert main(["validate", str(path)]) == 0
    assert capsys.readouterr().out == "0 jobs, 0 valid, 0 invalid\n"


def test_validate_missing_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", str(tmp_path / "nope.jsonl")]) == 2
    assert "nope.jsonl" in capsys.readouterr().err


def test_validate_without_a_file_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate"]) == 2
    assert "JOBS.jsonl" in capsys.readouterr().err


def test_validate_bytes_bom_and_bad_encoding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = job(id="a", model="wan2.5-image-to-video", prompt="p", image_urls=[URL]).encode()
    path = tmp_path / "odd.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + good + b"\n" + b'{"id": "\xff"}\n')
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    found = problem_lines(out, path)
    assert sorted(found) == [2]
    assert "not UTF-8" in found[2][0]
    assert out.splitlines()[-1] == "2 jobs, 1 valid, 1 invalid"


def test_validate_id_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = {"model": "wan2.5-image-to-video", "prompt": "p", "image_urls": [URL]}
    path = tmp_path / "ids.jsonl"
    path.write_text(
        "\n".join(json.dumps({**base, "id": value}) for value in ("x", 7, "", None, True, "7")),
        encoding="utf-8",
    )
    assert main(["validate", str(path)]) == 1
    found = problem_lines(capsys.readouterr().out, path)
    # `"id": null` is no id, as in `client.batch` (one reader: `read_job`).
    assert sorted(found) == [3, 5, 6]
    assert "duplicate id '7' (first used on line 2)" in found[6][0]


def test_check_job_lines_streams() -> None:
    line = job(model="wan2.5-image-to-video", prompt="p", image_urls=[URL]).encode()

    def endless() -> Iterator[bytes]:
        while True:
            yield line

    checks = list(itertools.islice(check_job_lines(endless()), 3))
    assert [c.line for c in checks] == [1, 2, 3]
    assert all(c.ok for c in checks)


# ---------------------------------------------------------------- models


def test_models_lists_every_model_and_range(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for model_id, cls in MODELS.items():
        assert model_id in out
        assert cls.__name__ in out
    for text in ("4-15 seconds", "3-15 seconds", "2-15 seconds", "5 or 10 seconds"):
        assert text in out
    assert "1-2147483647" in out
    assert "RawRequest" in out


def test_models_json_is_generated_from_the_classes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--json"]) == 0
    specs = json.loads(capsys.readouterr().out)
    assert [s["model"] for s in specs] == list(MODELS)
    for spec in specs:
        cls = MODELS[spec["model"]]
        assert [f["name"] for f in spec["fields"]] == [a.name for a in attrs.fields(cls)]
    seedance = {f["name"]: f for f in specs[0]["fields"]}
    assert seedance["duration"]["default"] == 5
    assert seedance["generate_audio"]["default"] is True
    assert seedance["prompt"]["required"] is True


def test_models_one_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "wan2.7-image-to-video"]) == 0
    out = capsys.readouterr().out
    assert "video_continuation" in out
    assert "seedance" not in out
    assert main(["models", "wan2.7"]) == 2
    assert "did you mean 'wan2.7-image-to-video'" in capsys.readouterr().err


# ---------------------------------------------------------------- the rest


def test_no_command_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "validate" in capsys.readouterr().err
    assert main(["--version"]) == 0
    assert "evolink-async" in capsys.readouterr().out
