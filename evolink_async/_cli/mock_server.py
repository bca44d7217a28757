"""
`evolink-async mock-server`: the mock EvoLink API on loopback until Ctrl-C.

It prints its URL and the key it accepts as `EVOLINK_*` variables, so another
shell (or `evolink-async batch --base-url URL --time-scale X`) can use it.
`--creates-per-second` / `--reads-per-second` give each key a rate limit;
`GET /_mock/stats` reports what it saw as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from ..testing import MockEvoLink, serve_forever

__all__ = ["run"]


def run(args: argparse.Namespace) -> int:
    """Run `evolink-async mock-server` with parsed `args`; 0 when stopped with Ctrl-C."""

    def ready(mock: MockEvoLink) -> None:
        print(f"EvoLink mock API on {mock.url}", flush=True)
        print(f"  EVOLINK_BASE_URL={mock.url} EVOLINK_API_KEY={mock.api_key}", flush=True)
        print("Ctrl-C stops it.", flush=True)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            serve_forever(
                port=args.port,
                on_ready=ready,
                time_scale=args.time_scale,
                seed=args.seed,
                creates_per_second=args.creates_per_second,
                reads_per_second=args.reads_per_second,
            )
        )
    return 0
