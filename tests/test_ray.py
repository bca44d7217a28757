"""
`evolink_async.ray.EvoLinkVideos` on a real local Ray cluster bound to
127.0.0.1 only, against `mock-server` in its own process (counted through
`GET /_mock/stats`): rows in and out, the creates budget, a worker killed
mid-batch, and no Ray port listening beyond loopback.
"""

from __future__ import annotations

import os

# Before Ray is imported: no cluster mode that binds beyond this machine.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")

import inspect
import ipaddress
import json
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evolink_async import PollPolicy, RetryPolicy
from evolink_async._batch.journal import read_entries
from evolink_async.testing import MockEvoLink
from evolink_async.testing._state import video_bytes

ray = pytest.importorskip("ray", reason="the ray extra is not installed")
from evolink_async.ray import EvoLinkVideos  # noqa: E402 -- only once Ray is importable

pytestmark = [
    pytest.mark.ray,
    pytest.mark.timeout(120),
    # Ray warns about its own settings while it starts; not ours to fix.
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

CREATE = "POST /v1/videos/generations"
MODEL = "wan2.5-image-to-video"
#: The size of every video `mock-server` serves (its default).
MOCK_VIDEO_SIZE = inspect.signature(MockEvoLink).parameters["video_size"].default


def jobs(count: int, prefix: str) -> list[dict[str, Any]]:
    return [
        {
            "id": f"{prefix}-{n}",
            "model": MODEL,
            "prompt": f"a cat, take {n}",
            "image_urls": ["https://example.com/cat.png"],
            "metadata": {"n": n},
        }
        for n in range(count)
    ]


@pytest.fixture(scope="module")
def mock_url() -> Iterator[str]:
    """`mock-server` (wan tasks take about 0.6 s); its key goes to the workers' environment."""
    command = [
        sys.executable, "-m", "evolink_async", "mock-server", "--time-scale", "0.005",
        "--creates-per-second", "40",
    ]  # fmt: skip
    saved = os.environ.get("EVOLINK_API_KEY")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        first, second = process.stdout.readline(), process.stdout.readline()
        url = re.search(r"on (http://127\.0\.0\.1:\d+)", first)
        key = re.search(r"EVOLINK_API_KEY=(\S+)", second)
        assert url and key, (first, second)
        os.environ["EVOLINK_API_KEY"] = key.group(1)
        yield url.group(1)
    finally:
        if saved is None:
            os.environ.pop("EVOLINK_API_KEY", None)
        else:
            os.environ["EVOLINK_API_KEY"] = saved
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


@pytest.fixture(scope="module")
def cluster(mock_url: str) -> Iterator[None]:
    """A local Ray cluster, every node on 127.0.0.1, workers inheriting the key."""
    # Read by Ray at its first import: had anything imported Ray before the
    # variable was set, its agents would bind this machine's network address.
    assert not ray._private.ray_constants.ENABLE_RAY_CLUSTER
    ray.init(
        address="local",
        include_dashboard=False,
        num_cpus=2,
        _node_ip_address="127.0.0.1",
        log_to_driver=False,
        configure_logging=False,
    )
    try:
        yield
    finally:
        ray.shutdown()


def stats(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/_mock/stats", timeout=5) as reply:  # noqa: S310
        data: dict[str, Any] = json.load(reply)
        return data


def options(url: str, **extra: Any) -> dict[str, Any]:
    client = {
        "base_url": url,
        "files_base_url": url,
        "poll": PollPolicy(min_interval=0.02, max_interval=0.2, default_estimate=0.6),
        "retry": RetryPolicy(max_retries=6, initial_backoff=0.01, max_backoff=0.2),
    }
    return {"run_id": extra.pop("run_id"), "client": client, **extra}


def descendants(root: int) -> set[int]:
    """Every process below `root` (from /proc)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def map_worker_pids() -> set[int]:
    pids = set()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if b"MapWorker(MapBatches(EvoLinkVideos))" in cmdline.read_bytes():
                pids.add(int(cmdline.parent.name))
        except OSError:
            continue
    return pids


def test_rows_in_records_out_one_task_per_job(cluster: None, mock_url: str) -> None:
    before = stats(mock_url)
    given = jobs(24, "plain")
    out = ray.data.from_items(given).map_batches(
        EvoLinkVideos,
        fn_constructor_kwargs=options(mock_url, run_id="ray-plain", creates_per_second=30),
        batch_size=6,
        concurrency=1,
    )
    rows = out.take_all()
    after = stats(mock_url)
    assert sorted(row["job_id"] for row in rows) == sorted(job["id"] for job in given)
    assert all(row["ok"] and row["status"] == "completed" for row in rows)
    assert {row["metadata"]["n"] for row in rows} == set(range(24))
    assert after["tasks_created"] - before["tasks_created"] == 24
    assert after.get("rate_limited", {}).get(CREATE, 0) == 0
    key = os.environ["EVOLINK_API_KEY"]
    for row in rows:
        assert key not in json.dumps(row)


@pytest.mark.parametrize("kept", [False, True], ids=["no-journal", "journal-and-videos"])
def test_a_worker_killed_mid_batch_loses_nothing_and_pays_nothing_twice(
    cluster: None, mock_url: str, tmp_path: Path, kept: bool
) -> None:
    # Without a journal the restarted worker re-sends its jobs' creates with
    # the same derived keys (the server replays them); with one it re-attaches
    # to the tasks journalled and downloads every video.
    before = stats(mock_url)
    given = jobs(20, f"killed-{kept}")
    journal, videos = tmp_path / "ray.journal", tmp_path / "videos"
    where = {"journal": str(journal), "download_dir": str(videos)} if kept else {}
    out = ray.data.from_items(given).map_batches(
        EvoLinkVideos,
        fn_constructor_kwargs=options(mock_url, run_id=f"ray-kill-{kept}", **where),
        batch_size=5,
        concurrency=1,
    )
    result: dict[str, Any] = {}

    def consume() -> None:
        try:
            result["rows"] = out.take_all()
        except Exception as exc:  # reported by the assertion below
            result["error"] = exc

    consumer = threading.Thread(target=consume)
    consumer.start()
    deadline = time.monotonic() + 60
    while stats(mock_url)["tasks_created"] - before["tasks_created"] < 3:
        assert time.monotonic() < deadline, "no create reached the mock"
        time.sleep(0.02)
    victims = map_worker_pids()
    assert len(victims) == 1
    os.kill(victims.pop(), signal.SIGKILL)
    consumer.join(timeout=90)
    assert not consumer.is_alive()
    assert "error" not in result, result.get("error")
    rows = result["rows"]
    after = stats(mock_url)

    assert sorted(row["job_id"] for row in rows) == sorted(job["id"] for job in given)
    assert all(row["ok"] for row in rows)
    # One server task per job: the re-run batch's creates were replays.
    assert after["tasks_created"] - before["tasks_created"] == 20
    created = {row["task_id"] for row in rows}
    assert len(created) == 20
    if not kept:
        assert after["replays"] > before["replays"]
        return
    # Every job has exactly one final outcome in the journal the restarted
    # worker took over, with the task its row reports, and its video on disk
    # (byte for byte what the server serves for that task).
    entries = {entry.job_id: entry for entry in read_entries(journal)}
    assert sorted(entries) == sorted(job["id"] for job in given)
    for row in rows:
        entry = entries[row["job_id"]]
        assert entry.outcome is not None and "error" not in entry.outcome
        assert entry.task_id == entry.outcome["task"]["id"] == row["task_id"]
        assert entry.outcome["task"]["status"] == "completed"
        assert entry.outcome["path"] == row["path"]
        video = Path(row["path"])
        assert video.parent == videos
        assert video.read_bytes() == video_bytes(row["task_id"], MOCK_VIDEO_SIZE)
    assert sorted(path.name for path in videos.iterdir()) == sorted(
        Path(row["path"]).name for row in rows
    )  # nothing left half-written


def test_the_api_key_is_refused_as_a_constructor_argument() -> None:
    from evolink_async import ValidationError

    key = "sk-never-in-ray-0000000000000042"
    with pytest.raises(ValidationError, match="EVOLINK_API_KEY") as caught:
        EvoLinkVideos(run_id="r", client={"api_key": key})
    assert key not in str(caught.value)
    assert repr(EvoLinkVideos(run_id="r")) == "EvoLinkVideos(run_id='r')"


def test_no_ray_port_listens_beyond_loopback(cluster: None) -> None:
    ss = shutil.which("ss")
    if ss is None:
        pytest.skip("`ss` (iproute2) is not installed")
    ours = descendants(os.getpid())
    listening = subprocess.run(
        [ss, "-ltnpH"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    checked = 0
    for line in listening:
        pids = {int(pid) for pid in re.findall(r"pid=(\d+)", line)}
        if not pids & ours:
            continue
        local = line.split()[3]
        host = local.rsplit(":", 1)[0].strip("[]")
        address = ipaddress.ip_address(host)
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        assert address.is_loopback, f"a Ray process listens on {local}: {line}"
        checked += 1
    assert checked >= 3  # GCS, raylet, workers: the check saw Ray's own ports
