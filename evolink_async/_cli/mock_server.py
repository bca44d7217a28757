"""
`evolink-async mock-server`: the mock EvoLink API on loopback until Ctrl-C.

It prints its URL and the `EVOLINK_*` variables that point a program at it
(the API and the files API are both served there), so another shell (or
`evolink-async batch --base-url URL --time-scale X`) can use it; with
`--json`, one JSON line with the same. `--api-key` sets the key it accepts.
`--creates-per-second` / `--reads-per-second` give each key a rate limit;
`GET /_mock/stats` reports what it saw as JSON.

Faults: `--fault-rate P` gives that share of API requests one fault, drawn
evenly from the `--faults` kinds (a `FaultPlan`: 429 with Retry-After, 5xx,
a connection dropped before or after the request is handled, a slow
reply); `--failure-rate P` fails that share of tasks with a random code.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from typing import Any

from ..testing import Fault, FaultPlan, MockEvoLink, serve_forever

__all__ = ["fault_plan", "run"]

_PROG = "evolink-async mock-server"
#: `--faults` names -> the `FaultPlan` field each sets.
_KINDS = {
    Fault.RATE_LIMIT.value: "rate_limit",
    Fault.SERVER_ERROR.value: "server_error",
    Fault.DROP_BEFORE.value: "drop_before",
    Fault.DROP_AFTER.value: "drop_after",
    Fault.SLOW.value: "slow",
}


def fault_plan(rate: float, kinds: str) -> FaultPlan | None:
    """
    The plan `--fault-rate` and `--faults` describe: `rate` shared evenly by the kinds.

    Raises:
        ValueError: the rate is not in [0, 1], or a kind is unknown.
    """
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"--fault-rate {rate}: must be from 0 to 1")
    names = [name.strip() for name in kinds.split(",") if name.strip()]
    unknown = [name for name in names if name not in _KINDS]
    if unknown or not names:
        raise ValueError(f"--faults {kinds!r}: the kinds are {', '.join(_KINDS)} (comma-separated)")
    if rate == 0:
        return None
    chosen = {_KINDS[name] for name in names}
    share = rate / len(chosen)
    return FaultPlan(
        rate_limit=share if "rate_limit" in chosen else 0.0,
        server_error=share if "server_error" in chosen else 0.0,
        drop_before=share if "drop_before" in chosen else 0.0,
        drop_after=share if "drop_after" in chosen else 0.0,
        slow=share if "slow" in chosen else 0.0,
    )


def run(args: argparse.Namespace) -> int:
    """Run `evolink-async mock-server` with parsed `args`; 0 when stopped with Ctrl-C."""
    try:
        faults = fault_plan(args.fault_rate, args.faults)
        if not 0.0 <= args.failure_rate <= 1.0:
            raise ValueError(f"--failure-rate {args.failure_rate}: must be from 0 to 1")
        if args.api_key is not None and not args.api_key.strip():
            raise ValueError("--api-key: must not be blank")
    except ValueError as exc:
        print(f"{_PROG}: {exc}", file=sys.stderr)
        return 2

    def ready(mock: MockEvoLink) -> None:
        if args.json:
            shown = {"url": mock.url, "files_url": mock.url, "api_key": mock.api_key}
            print(json.dumps(shown), flush=True)
            return
        print(f"EvoLink mock API on {mock.url}", flush=True)
        print(
            f"  EVOLINK_BASE_URL={mock.url} EVOLINK_FILES_BASE_URL={mock.url} "
            f"EVOLINK_API_KEY={mock.api_key}",
            flush=True,
        )
        if faults is not None:
            print(f"Faults: {args.fault_rate:.0%} of API requests ({args.faults}).", flush=True)
        if args.failure_rate:
            print(f"Failures: {args.failure_rate:.0%} of tasks.", flush=True)
        print("Ctrl-C stops it.", flush=True)

    options: dict[str, Any] = {"faults": faults, "failure_rate": args.failure_rate}
    if args.api_key is not None:
        options["api_key"] = args.api_key
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            serve_forever(
                port=args.port,
                on_ready=ready,
                time_scale=args.time_scale,
                seed=args.seed,
                creates_per_second=args.creates_per_second,
                reads_per_second=args.reads_per_second,
                **options,
            )
        )
    return 0
