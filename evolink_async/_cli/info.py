"""
The read-only commands: `models` (offline, from the request classes), `task`
and `credits` (one API call each, key and base URL from options or the
environment).

API errors are printed in one line (never with the key) and exit 1. What
the server sent (ids, messages, URLs, the task's JSON) is printed through
`printable`, so no control character of its text reaches the terminal.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable

from .._client import EvoLinkClient
from .._errors import EvoLinkError
from .._models import MODELS, ModelSpec, model_specs
from .._models.rules import did_you_mean
from .._text import printable, printable_json
from .calls import EXIT_USAGE, UsageError, api_client
from .display import table_lines

__all__ = ["run_credits", "run_models", "run_task"]


# ---------------------------------------------------------------- models


def _default_text(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _render_spec(spec: ModelSpec) -> list[str]:
    lines = [f"{spec.model}  ({spec.request_class.__name__})", f"  {spec.summary}", ""]
    rows: list[list[str]] = [["field", "type", "required", "default", "limits"]]
    rows += [
        [f.name, f.type, "yes" if f.required else "no", _default_text(f.default), f.limits]
        for f in spec.fields
    ]
    lines += [f"  {line}" for line in table_lines(rows)]
    lines += ["", f"  image files: {spec.image_files}"]
    lines += [f"  rule: {rule}" for rule in spec.rules]
    return lines


def run_models(args: argparse.Namespace) -> int:
    """Run `evolink-async models`: every model's fields, defaults and limits."""
    specs = model_specs()
    if args.model is not None:
        specs = tuple(s for s in specs if s.model == args.model)
        if not specs:
            hint = did_you_mean(args.model, tuple(MODELS))
            print(
                f"evolink-async models: unknown model {args.model!r};{hint} "
                f"known models: {', '.join(MODELS)}",
                file=sys.stderr,
            )
            return 2
    if args.json:
        json.dump([s.to_json() for s in specs], sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    blocks = ["\n".join(_render_spec(s)) for s in specs]
    footer = (
        "Unset fields are left out of the request; the API applies the default shown.\n"
        "URLs are absolute http(s) URLs (no data: URLs); a URL | Path field also takes a\n"
        "pathlib.Path, which is checked against the image limits and uploaded first.\n"
        "Any other model id: send it with RawRequest(model, params) (not validated)."
    )
    sys.stdout.write("\n\n".join([*blocks, footer]) + "\n")
    return 0


# ---------------------------------------------------------------- task, credits


def _call_api(args: argparse.Namespace, call: Callable[[EvoLinkClient], Awaitable[None]]) -> int:
    """Run `call(client)` on a client made from the options; print API errors, exit 1."""
    try:
        # Without a key the client says how to configure one, on its first call.
        client = api_client(args, f"evolink-async {args.command_name}", need_key=False)
    except UsageError as exc:
        print(f"evolink-async {args.command_name}: {exc}", file=sys.stderr)
        return EXIT_USAGE

    async def run() -> None:
        async with client:
            await call(client)

    try:
        asyncio.run(run())
    except EvoLinkError as exc:
        print(f"evolink-async {args.command_name}: {printable(exc)}", file=sys.stderr)
        return 1
    return 0


def run_task(args: argparse.Namespace) -> int:
    """Run `evolink-async task TASK_ID`: one task's state, or its JSON with `--json`."""

    async def show(client: EvoLinkClient) -> None:
        task = await client.get_task(args.task_id)
        if args.json:
            print(printable_json(json.dumps(dict(task.raw), indent=2, ensure_ascii=False)))
            return
        rows = [
            ("id", task.id),
            ("model", task.model or "-"),
            ("status", task.status.value),
            ("progress", f"{task.progress}%"),
            ("created", task.created.isoformat() if task.created else "-"),
            ("estimated", f"{task.estimated_time:g}s" if task.estimated_time else "-"),
            ("video", task.video_url or "-"),
        ]
        if task.usage is not None:
            rows.append(
                (
                    "credits",
                    f"reserved {task.usage.credits_reserved}, used {task.usage.credits_used}",
                )
            )
        if task.error is not None:
            rows.append(("error", f"[{task.error.code}] {task.error.message}"))
        for name, value in rows:
            print(f"{name:<10} {printable(value)}")

    return _call_api(args, show)


def run_credits(args: argparse.Namespace) -> int:
    """Run `evolink-async credits`: the account's balance (and the key's limit, if any)."""

    async def show(client: EvoLinkClient) -> None:
        balance = await client.get_credits()
        if args.json:
            print(printable_json(json.dumps(dict(balance.raw), indent=2, ensure_ascii=False)))
            return
        print(f"remaining  {balance.remaining_credits}")
        print(f"used       {balance.used_credits}")
        if balance.token_unlimited_credits is False or balance.token_remaining_credits is not None:
            print(f"key limit  {balance.token_remaining_credits} remaining")

    return _call_api(args, show)
