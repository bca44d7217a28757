"""
Hostile job lines and job items fail alone, reported, never as a traceback.

Two classes, each generated across every place a value can sit in a job (the
id, the model, a field, a field name, metadata, deep inside an array):

- lines `json.loads` refuses with something other than `JSONDecodeError`:
  integers over the interpreter's digit limit (`ValueError`), nesting past its
  recursion limit (`RecursionError`);
- lines it reads but nothing downstream can hold: lone surrogates (no UTF-8
  writes them: not the terminal, not `--out`, not the journal), NaN and
  infinities (not JSON), nesting deeper than `MAX_JOB_DEPTH`.

And for `client.batch`, items no JSON line can make: ids whose `__str__`
raises, ints too long to write, mappings that raise, blank models, keys that
are not strings. Each must end as that job's `ValidationError` outcome while
the jobs around it run.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evolink_async import Job, RawRequest, ValidationError
from evolink_async._batch.jobs import MAX_JOB_DEPTH, job_stand_in, read_job
from evolink_async._cli import main
from evolink_async._cli.jobfile import check_job_lines, problem_lines
from evolink_async.testing import MockEvoLink

from .conftest import make_client

CREATE = "POST /v1/videos/generations"
IMAGE = "https://example.com/boat.png"
#: Stands where the hostile JSON text goes, in a job dumped to text.
SLOT = "@@slot@@"
#: Where a hostile value can sit in a job line.
PLACES = ("id", "model", "field", "extra field", "metadata", "deep in metadata", "key")


def good(job_id: str) -> dict[str, Any]:
    return {
        "id": job_id,
        "model": "wan2.5-image-to-video",
        "prompt": f"A paper boat, {job_id}",
        "image_urls": [IMAGE],
    }


def line_with(fragment: str, place: str, job_id: str) -> str:
    """A job line with the raw JSON text `fragment` at `place`."""
    job: dict[str, Any] = good(job_id)
    if place == "id":
        job["id"] = SLOT
    elif place == "model":
        job["model"] = SLOT
    elif place == "field":
        job["prompt"] = SLOT
    elif place == "extra field":
        job["seed"] = SLOT
    elif place == "metadata":
        job["metadata"] = {"shot": SLOT}
    elif place == "deep in metadata":
        job["metadata"] = {"takes": [{"notes": ["a", SLOT]}]}
    else:  # a field name: only a string fragment can be one
        job[SLOT] = 1
        return json.dumps(job).replace(f'"{SLOT}": 1', f"{fragment}: 1")
    return json.dumps(job).replace(f'"{SLOT}"', fragment)


# ---------------------------------------------------------------- the fragments


huge_ints = st.builds(
    lambda sign, digits: f"{sign}1{'0' * (digits - 1)}",
    st.sampled_from(["", "-"]),
    st.integers(min_value=4301, max_value=40_000),
)


@st.composite
def deep_nesting(draw: st.DrawFn, low: int = MAX_JOB_DEPTH + 1, high: int = 60_000) -> str:
    depth = draw(st.integers(min_value=low, max_value=high))
    shape = draw(st.sampled_from(["array", "object", "mixed"]))
    if shape == "array":
        return "[" * depth + "]" * depth
    if shape == "object":
        return '{"a":' * depth + "1" + "}" * depth
    return '[{"a":' * (depth // 2) + "1" + "}]" * (depth // 2)


lone_surrogates = st.builds(
    lambda code, before, after: f'"{before}\\u{code:04x}{after}"',
    st.integers(min_value=0xD800, max_value=0xDFFF),
    st.sampled_from(["", "x", "job-"]),
    # Never a \u escape after it: a high then a low surrogate would be a pair.
    st.sampled_from(["", "y", " tail"]),
)
non_finite = st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "-1e999", "2e308"])


@st.composite
def hostile_lines(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["huge int", "deep", "surrogate", "non-finite"]))
    if kind == "surrogate":
        return line_with(draw(lone_surrogates), draw(st.sampled_from(PLACES)), "h")
    place = draw(st.sampled_from([p for p in PLACES if p != "key"]))
    fragment = {"huge int": huge_ints, "deep": deep_nesting(), "non-finite": non_finite}[kind]
    return line_with(draw(fragment), place, "h")


def assert_writable(text: str) -> None:
    """What goes to a terminal or `--out`: UTF-8, and no control character."""
    text.encode("utf-8")
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in text), ascii(text)


@given(hostile_lines())
@settings(max_examples=300, deadline=None)
def test_a_hostile_line_is_a_problem_of_its_line_only(hostile: str) -> None:
    lines = [json.dumps(good("before")), hostile, json.dumps(good("after"))]
    checks = list(check_job_lines(line.encode() + b"\n" for line in lines))
    assert [check.line for check in checks] == [1, 2, 3]
    assert checks[0].ok and checks[2].ok
    bad = checks[1]
    assert not bad.ok and bad.job is None
    for text in problem_lines("jobs.jsonl", bad):
        assert text.startswith("jobs.jsonl:2: ")
        assert_writable(text)
    if bad.id is not None:
        assert_writable(bad.id)


@given(st.integers(min_value=MAX_JOB_DEPTH + 1, max_value=400))
def test_nesting_json_reads_but_no_job_may_hold_is_refused_by_read_job(depth: int) -> None:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    with pytest.raises(ValidationError, match="levels"):
        read_job({**good("deep"), "metadata": {"x": value}})
    shallow: Any = "leaf"
    for _ in range(MAX_JOB_DEPTH - 3):
        shallow = {"k": shallow}
    assert read_job({**good("ok"), "metadata": shallow}).id == "ok"


# ---------------------------------------------------------------- the CLI, a table of every kind


def table_lines() -> list[str]:
    """One hostile line per kind and place, with fixed representatives."""
    fragments = {
        "huge int": ["1" + "0" * 4300, "-9" * 5000],
        "deep": ["[" * 5000 + "]" * 5000, '{"a":' * 300 + "1" + "}" * 300],
        "surrogate": ['"\\ud800"', '"job-\\udfff"', '"\\udc00\\ud83d"'],
        "non-finite": ["NaN", "-Infinity", "1e400"],
    }
    lines = []
    for kind, values in fragments.items():
        for n, fragment in enumerate(values):
            for place in PLACES:
                if place == "key" and kind != "surrogate":
                    continue
                lines.append(line_with(fragment, place, f"{kind}-{n}-{place}"))
    return lines


@pytest.fixture(scope="module")
def table_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, int]:
    """A job file: good jobs around every hostile line; (path, good, bad)."""
    hostile = table_lines()
    lines = [json.dumps(good("first"))]
    for n, line in enumerate(hostile):
        lines.append(line)
        if n % 10 == 9:
            lines.append(json.dumps(good(f"between-{n}")))
    lines.append(json.dumps(good("last")))
    path = tmp_path_factory.mktemp("hostile") / "jobs.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, len(lines) - len(hostile), len(hostile)


def test_validate_reports_every_hostile_line_and_counts_the_rest(
    table_file: tuple[Path, int, int], capsys: pytest.CaptureFixture[str]
) -> None:
    path, good_count, bad_count = table_file
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert_writable(out.replace("\n", ""))
    reported = {int(line.split(":")[1]) for line in out.splitlines() if line.startswith(str(path))}
    assert len(reported) == bad_count
    assert out.splitlines()[-1] == (
        f"{good_count + bad_count} jobs, {good_count} valid, {bad_count} invalid"
    )


def run_cli(*args: str, key: str) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVOLINK_")}
    env["EVOLINK_API_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "evolink_async", *args],
        capture_output=True,
        timeout=120,
        env=env,
        check=False,
    )


@pytest.mark.anyio
async def test_batch_skips_every_hostile_line_and_runs_the_rest(
    table_file: tuple[Path, int, int], tmp_path: Path
) -> None:
    path, good_count, bad_count = table_file
    out = tmp_path / "results.jsonl"
    async with MockEvoLink(time_scale=0.001) as mock:
        args = ["batch", str(path), "--journal", str(tmp_path / "j"), "--out", str(out)]
        args += ["--base-url", mock.url, "--time-scale", "0.001"]
        result = await asyncio.to_thread(run_cli, *args, key=mock.api_key)
        err = result.stderr.decode("utf-8")
        assert result.returncode == 1, err
        assert "Traceback" not in err
        assert mock.stats.tasks_created == good_count
    skipped = [line for line in err.splitlines() if line.endswith("(line skipped)")]
    assert len({line.split(":")[1] for line in skipped}) == bad_count
    assert all(line.startswith(f"{path}:") for line in skipped)
    assert_writable(err.replace("\n", ""))
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert sum(r["status"] == "invalid" for r in records) == bad_count
    assert sum(r["status"] == "completed" for r in records) == good_count


@pytest.mark.anyio
async def test_strict_batch_stops_on_hostile_lines_before_anything_is_sent(
    table_file: tuple[Path, int, int], tmp_path: Path
) -> None:
    path, _, bad_count = table_file
    async with MockEvoLink(time_scale=0.001) as mock:
        args = ["batch", str(path), "--journal", str(tmp_path / "j"), "--strict"]
        args += ["--base-url", mock.url]
        result = await asyncio.to_thread(run_cli, *args, key=mock.api_key)
        err = result.stderr.decode("utf-8")
        assert result.returncode == 2, err
        assert "Traceback" not in err
        assert mock.stats.requests[CREATE] == 0
    reported = {line.split(":")[1] for line in err.splitlines() if line.startswith(f"{path}:")}
    assert len(reported) == bad_count
    assert f"{bad_count} of " in err


# ---------------------------------------------------------------- client.batch: what no line makes


class Unshowable:
    """An object that refuses to become text."""

    def __str__(self) -> str:
        raise RuntimeError("no str for you")

    def __repr__(self) -> str:
        raise RuntimeError("no repr either")

    def __bool__(self) -> bool:
        raise RuntimeError("no truth either")


class RaisingMapping(Mapping[str, Any]):
    """A mapping that fails as soon as it is read."""

    def __getitem__(self, key: str) -> Any:
        raise RuntimeError("unreadable")

    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("unreadable")

    def __len__(self) -> int:
        return 3


def deep_list(depth: int) -> list[Any]:
    value: list[Any] = [IMAGE]
    for _ in range(depth):
        value = [value]
    return value


def cyclic() -> list[Any]:
    value: list[Any] = []
    value.append(value)
    return value


#: (name, item): each is refused, and fails alone.
HOSTILE_ITEMS: list[tuple[str, Any]] = [
    ("id an int too long to write", {**good("x"), "id": 10**5000}),
    ("id a negative int too long to write", {**good("x"), "id": -(10**6000)}),
    ("id whose str raises", {**good("x"), "id": Unshowable()}),
    ("id with a lone surrogate", {**good("x"), "id": "job-\ud800"}),
    ("id NaN", {**good("x"), "id": float("nan")}),
    ("model whose str raises", {**good("x"), "model": Unshowable()}),
    ("model blank", {**good("blank-model"), "model": "   "}),
    ("model with a lone surrogate", {**good("x"), "model": "wan\udfff"}),
    ("field an int too long to write", {**good("big-seed"), "seed": 10**5000}),
    ("field whose repr raises", {**good("bad-field"), "seed": Unshowable()}),
    ("field NaN", {**good("nan-seed"), "seed": float("nan")}),
    ("field a lone surrogate", {**good("sur-prompt"), "prompt": "a\udc00b"}),
    ("key not a string", {**good("int-key"), 7: "seven"}),
    ("key with a lone surrogate", {**good("sur-key"), "\ud801": 1}),
    ("metadata infinite", {**good("inf-meta"), "metadata": {"x": float("inf")}}),
    ("metadata nested too deep", {**good("deep-meta"), "metadata": {"x": deep_list(5000)}}),
    ("field nested too deep", {**good("deep-field"), "image_urls": deep_list(5000)}),
    ("field a cycle", {**good("cycle"), "image_urls": cyclic()}),
    ("a mapping that raises", RaisingMapping()),
    ("a Job with a surrogate id", Job(RawRequest("wan2.5-image-to-video", {}), id="j\ud800")),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("name", "item"), HOSTILE_ITEMS, ids=[n for n, _ in HOSTILE_ITEMS])
async def test_a_hostile_item_fails_alone_in_client_batch(
    name: str, item: Any, mock: MockEvoLink, tmp_path: Path
) -> None:
    jobs = [good("before"), item, good("after")]
    async with make_client(mock) as client:
        outcomes = await client.batch(jobs, journal=tmp_path / "j").results()
    assert [o.ok for o in outcomes] == [True, False, True], outcomes[1].error
    assert isinstance(outcomes[1].error, ValidationError)
    assert mock.stats.tasks_created == 2
    for outcome in outcomes:
        # What `--out` and the display make of it can be written.
        json.dumps(outcome.to_record(), ensure_ascii=False).encode("utf-8")
        str(outcome.error).encode("utf-8")


hostile_values = st.one_of(
    st.integers(min_value=10**4400, max_value=10**4500),
    st.integers(),
    st.text(),
    st.floats(),
    st.builds(Unshowable),
    st.lists(st.integers(), max_size=3),
    st.none(),
    st.booleans(),
)


@given(job_id=hostile_values, model=hostile_values)
@settings(max_examples=300)
def test_a_stand_in_names_any_item_without_raising(job_id: Any, model: Any) -> None:
    item = {**good("x"), "id": job_id, "model": model}
    stand_in = job_stand_in(item)
    if stand_in.id is not None:
        stand_in.id.encode("utf-8")
    assert stand_in.request.model.strip()
    stand_in.request.model.encode("utf-8")
    with pytest.raises(ValidationError) as caught:
        read_job({**item, "model": "no-such-model"})
    str(caught.value).encode("utf-8")
