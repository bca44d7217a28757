"""
`evolink-async generate MODEL --prompt ... --image URL|PATH [--field k=v ...] [--download DIR]`.

One video from the command line, as `client.generate` makes it in Python:
the fields are checked before anything is sent (every problem printed, exit
2), local images are uploaded first, the task is created (its id printed at
once on stderr), then followed to its end by `wait.follow` (live progress on
stderr; the URL, the saved path or `--json` on stdout).

- `--image` goes to the model's image field: every image to a list field
  (`image_urls`), or one each to single fields in their order (wan2.7:
  `image_start`, then `image_end`). A value with a URL scheme is a URL;
  anything else is a local file.
- `--field NAME=VALUE` sets any other field; VALUE is read as JSON when it
  parses (`duration=5`, `generate_audio=false`, `image_urls=["https://..."]`)
  and taken as text otherwise (`aspect_ratio=16:9`). Quote a JSON string to
  keep text that looks like a number: `--field 'seed="42"'`.
- Ctrl-C once the task exists ends the command (exit 130) with the line that
  follows it again: the task itself goes on on the server, and is paid for.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from .._batch.jobs import looks_like_url
from .._errors import EvoLinkError
from .._models import MODELS
from .calls import (
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    UsageError,
    UserInterruptError,
    api_client,
    interruptible,
    report_failure,
    say,
)
from .taskview import make_task_view
from .wait import follow, resume_hint

__all__ = ["fields_of", "run"]

_PROG = "evolink-async generate"


def _value(text: str) -> Any:
    """A `--field` value: JSON when it parses, the text itself otherwise."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _image(text: str) -> str | Path:
    return text if looks_like_url(text) else Path(text).expanduser()


def fields_of(args: argparse.Namespace) -> dict[str, Any]:
    """
    The request fields the options give: `--field`s, `--prompt`, `--image`s.

    Raises:
        UsageError: a malformed or repeated field, or more images than the
            model has image fields.
    """
    fields: dict[str, Any] = {}
    for item in args.field:
        name, equals, text = item.partition("=")
        name = name.strip()
        if not equals or not name:
            raise UsageError(f"--field {item!r}: write NAME=VALUE")
        if name in fields:
            raise UsageError(f"--field {name}: given twice")
        fields[name] = _value(text)
    if args.prompt is not None:
        if "prompt" in fields:
            raise UsageError("--prompt and --field prompt=...: give one of them")
        fields["prompt"] = args.prompt
    if args.image and args.model in MODELS:
        _place_images(args.model, [_image(text) for text in args.image], fields)
    return fields


def _place_images(model: str, images: list[str | Path], fields: dict[str, Any]) -> None:
    slots = [f for f in MODELS[model].spec().fields if f.local_file]
    if not slots:
        raise UsageError(f"--image: {model} takes no image")
    names = ", ".join(f.name for f in slots)
    taken = [f.name for f in slots if f.name in fields]
    if taken:
        raise UsageError(f"--image and --field {taken[0]}=...: give the images one way")
    if slots[0].type.startswith("list"):
        fields[slots[0].name] = images
        return
    if len(images) > len(slots):
        raise UsageError(f"--image: {model} takes at most {len(slots)} images ({names})")
    for slot, image in zip(slots, images, strict=False):
        fields[slot.name] = image


def run(args: argparse.Namespace) -> int:
    """Run `evolink-async generate` with parsed `args`; return the exit code."""
    try:
        if args.timeout is not None and not args.timeout > 0:
            raise UsageError(f"--timeout {args.timeout}: must be > 0")
        fields = fields_of(args)
        client = api_client(args, _PROG)
    except UsageError as exc:
        print(f"{_PROG}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    created: list[str] = []

    async def generate() -> int:
        view = make_task_view(sys.stderr)
        task = await client.submit(args.model, **fields)
        created.append(task.id)
        view.created(task)
        return await follow(client, task, args, view, prog=_PROG)

    async def main() -> int:
        async with client:
            return await interruptible(generate())

    try:
        return asyncio.run(main())
    except EvoLinkError as exc:
        # A ValidationError comes before anything is sent: a rule of the
        # model, or a local file (exit 2).
        code = report_failure(_PROG, exc)
        if created:
            say(f"{_PROG}: the task goes on on the server: {resume_hint(created[0], args)}")
        return code
    except (UserInterruptError, KeyboardInterrupt):
        if created:
            say(
                f"{_PROG}: interrupted; {created[0]} goes on on the server: "
                f"{resume_hint(created[0], args)}"
            )
        else:
            say(f"{_PROG}: interrupted before the create was answered")
        return EXIT_INTERRUPTED
