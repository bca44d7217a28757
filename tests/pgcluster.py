"""
A throwaway PostgreSQL cluster for the tests: `initdb` + `pg_ctl`, loopback only.

    python -m tests.pgcluster start DIR    # prints the URL; DIR/url holds it too
    python -m tests.pgcluster stop DIR

The cluster trusts every local connection, listens on 127.0.0.1 only (and a
socket in DIR), and runs without fsync: it holds test data, nothing else.
PostgreSQL refuses to run as root, so under root it runs as the system user
`evolinkpg` (made if missing).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Final

__all__ = ["available", "start", "stop"]

_USER: Final = "evolinkpg"


def available() -> bool:
    """Whether the PostgreSQL server binaries are on PATH."""
    return all(shutil.which(tool) for tool in ("initdb", "pg_ctl", "postgres"))


def _as_server_user(args: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return args
    return ["runuser", "-u", _USER, "--", *args]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start(root: Path) -> str:
    """Make and start a cluster in `root`; return its URL (also written to `root/url`)."""
    root.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(_USER)
        except KeyError:
            # useradd is found on PATH, as an administrator would run it.
            subprocess.run(["useradd", "-r", "-M", "-s", "/usr/sbin/nologin", _USER], check=True)  # noqa: S607
        shutil.chown(root, _USER)
    data = root / "data"
    subprocess.run(
        _as_server_user(["initdb", "-D", str(data), "-A", "trust", "-U", "postgres"]),
        check=True,
        capture_output=True,
    )
    port = _free_port()
    options = f"-c fsync=off -c listen_addresses=127.0.0.1 -p {port} -k {root}"
    subprocess.run(
        _as_server_user(
            ["pg_ctl", "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start"]
        ),
        check=True,
        capture_output=True,
    )
    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    (root / "url").write_text(url + "\n", encoding="utf-8")
    return url


def stop(root: Path) -> None:
    """Stop the cluster in `root` (if running) and remove it."""
    data = root / "data"
    if data.exists():
        subprocess.run(
            _as_server_user(["pg_ctl", "-D", str(data), "-m", "immediate", "stop"]),
            check=False,
            capture_output=True,
        )
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    command, where = sys.argv[1], Path(sys.argv[2]).resolve()
    if command == "start":
        print(start(where))
    elif command == "stop":
        stop(where)
    else:
        sys.exit(f"usage: {sys.argv[0]} start|stop DIR")
