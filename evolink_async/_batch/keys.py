"""
Derived Idempotency-Keys and run ids: the same job sends the same key everywhere.

A batch job's key is a hash of (`run_id`, job id, request fingerprint), so
every process and every attempt that runs that job in that run sends the
same key, and the server replays a repeated create instead of billing it
again. A new `run_id` gives every job a new key, and so fresh tasks; a
changed request under the same id gives a new key too (and the journal
refuses it, since its fingerprint differs).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import Final

from .._errors import Problem, ValidationError

__all__ = ["check_run_id", "derive_key", "new_run_id"]

#: Long enough that two jobs never meet (192 bits), well inside the API's
#: 96-character limit on keys.
_DIGEST_CHARS: Final = 48
#: Run ids are written into journals and logs: keep them short and printable.
_MAX_RUN_ID: Final = 200


def derive_key(run_id: str, job_id: str, fingerprint: str) -> str:
    """
    The Idempotency-Key of one job in one run.

    `evl-` and 48 hex digits (52 characters of `[a-z0-9-]`, within the API's
    16-96 characters of `[A-Za-z0-9._-]`), the same for the same three
    inputs on any machine, and different when any of them changes.
    """
    # JSON keeps the three apart: ("a", "bc") and ("ab", "c") differ.
    text = json.dumps([run_id, job_id, fingerprint], separators=(",", ":"))
    return "evl-" + hashlib.sha256(text.encode()).hexdigest()[:_DIGEST_CHARS]


def new_run_id() -> str:
    """A fresh run id: `run-` and 16 hex digits."""
    return f"run-{secrets.token_hex(8)}"


def check_run_id(run_id: object) -> str:
    """
    The run id, if it is one.

    Raises:
        ValidationError: not a non-empty string of at most 200 printable
            characters.
    """
    if (
        not isinstance(run_id, str)
        or not run_id
        or len(run_id) > _MAX_RUN_ID
        or not run_id.isprintable()
        or run_id != run_id.strip()
    ):
        rule = f"must be 1-{_MAX_RUN_ID} printable characters, no leading or trailing space"
        # A Problem shows any value safely (an int of 5,000 digits has no repr).
        raise ValidationError([Problem(field="run_id", value=run_id, rule=rule)])
    return run_id
