"""
`submit` and `generate` as type checkers see them: one overload per model id.

Each model id (`ModelId`) has an overload whose keywords are that model's
fields, a `TypedDict` (`_models/params.py`), and a request object has one
with no fields beside it; there is no overload for any other string. So
pyright (VS Code's Pylance) and mypy flag an unknown model id, a misspelt
field, a field of another model, a missing required field or a value no rule
allows (`quality="720P"`) where the call is written. The checks at run time
are the request classes' own, whatever the caller's types said: any string
is taken there, and an unknown id is a `ValidationError`.

`EvoLinkClient` inherits these two methods and implements `_submit` and
`_generate`, which they call; this file holds only the typed faces (ten
overloads would take a third of `_client.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal, Unpack, overload

from . import _models
from ._values import Task

__all__ = ["ModelCalls", "ProgressCallback"]

#: What `on_progress` is called with (sync or async): each new snapshot.
ProgressCallback = Callable[[Task], Any]


class ModelCalls:
    """`submit` and `generate`, typed per model id; `EvoLinkClient` implements them."""

    __slots__ = ()

    if TYPE_CHECKING:

        async def _submit(
            self,
            model_or_request: str | _models.Request,
            params: Mapping[str, Any],
            idempotency_key: str | None,
        ) -> Task: ...

        async def _generate(
            self,
            model_or_request: str | _models.Request,
            params: Mapping[str, Any],
            timeout: float | None,
            on_progress: ProgressCallback | None,
            idempotency_key: str | None,
        ) -> Task: ...

    @overload
    async def submit(
        self,
        model_or_request: Literal["seedance-2.0-image-to-video"],
        /,
        *,
        idempotency_key: str | None = None,
        **params: Unpack[_models.SeedanceImageToVideoParams],
    ) -> Task: ...

    @overload
    async def submit(
        self,
        model_or_request: Literal["seedance-2.0-fast-image-to-video"],
        /,
        *,
        idempotency_key: str | None = None,
        **params: Unpack[_models.SeedanceFastImageToVideoParams],
    ) -> Task: ...

    @overload
    async def submit(
        self,
        model_or_request: Literal["happyhorse-1.0-image-to-video"],
        /,
        *,
        idempotency_key: str | None = None,
        **params: Unpack[_models.HappyHorseImageToVideoParams],
    ) -> Task: ...

    @overload
    async def submit(
        self,
        model_or_request: Literal["wan2.7-image-to-video"],
        /,
        *,
        idempotency_key: str | None = None,
        **params: Unpack[_models.Wan27ImageToVideoParams],
    ) -> Task: ...

    @overload
    async def submit(
        self,
        model_or_request: Literal["wan2.5-image-to-video"],
        /,
        *,
        idempotency_key: str | None = None,
        **params: Unpack[_models.Wan25ImageToVideoParams],
    ) -> Task: ...

    @overload
    async def submit(
        self, model_or_request: _models.Request, /, *, idempotency_key: str | None = None
    ) -> Task: ...

    async def submit(
        self,
        model_or_request: str | _models.Request,
        /,
        *,
        idempotency_key: str | None = None,
        **params: Any,
    ) -> Task:
        """
        Create one generation task (`POST /v1/videos/generations`).

        Args:
            model_or_request: a model id (then `params` are its fields: for
                type checkers, that model's `<Model>Params` TypedDict) or a
                request object such as `SeedanceImageToVideo(...)` or
                `RawRequest(...)`. Any string is checked at run time: an
                unknown id is a `ValidationError` naming the closest one.
            idempotency_key: the `Idempotency-Key` to send (16-96 characters
                of `[A-Za-z0-9._-]`); default: a fresh one. Retries of this
                call reuse it, so a retried create is never billed twice;
                pass your own to make a create safe to repeat across
                processes.
            params: the model's fields, when a model id is given. A
                `pathlib.Path` where an image URL goes is uploaded first.

        Returns:
            The new task (usually `pending`).

        Raises:
            ValidationError: bad parameters; nothing was sent.
            APIError: the API refused (a subclass per status).
            APIConnectionError: no answer after every retry.
        """
        return await self._submit(model_or_request, params, idempotency_key)

    @overload
    async def generate(
        self,
        model_or_request: Literal["seedance-2.0-image-to-video"],
        /,
        *,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
        idempotency_key: str | None = None,
        **params: Unpack[_models.SeedanceImageToVideoParams],
    ) -> Task: ...

    @overload
    async def generate(
        self,
        model_or_request: Literal["seedance-2.0-fast-image-to-video"],
        /,
        *,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
        idempotency_key: str | None = None,
        **params: Unpack[_models.SeedanceFastImageToVideoParams],
    ) -> Task: ...

    @overload
    async def generate(
        self,
        model_or_request: Literal["happyhorse-1.0-image-to-video"],
        /,
        *,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
        idempotency_key: str | None = None,
        **params: Unpack[_models.HappyHorseImageToVideoParams],
    ) -> Task: ...

    @overload
    async def generate(
        self,
        model_or_request: Literal["wan2.7-image-to-video"],
        /,
        *,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
        idempotency_key: str | None = None,
        **params: Unpack[_models.Wan27ImageToVideoParams],
    ) -> Task: ...

    @overload
    async def generate(
        self,
        model_or_request: Literal["wan2.5-image-to-video"],
        /,
        *,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
        idempotency_key: str | None = None,
        **params: Unpack[_models.Wan25ImageToVideoParams],
    ) -> Task: ...

    @overload
    async def generate(
        self,
        model_or_request: _models.Request,
        /,
        *,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
        idempotency_key: str | None = None,
    ) -> Task: ...

    async def generate(
        self,
        model_or_request: str | _models.Request,
        /,
        *,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
        idempotency_key: str | None = None,
        **params: Any,
    ) -> Task:
        """
        Submit a task and wait for it: `submit(...)` then `wait(...)`.

        Takes what `submit` takes, and `timeout` and `on_progress` as `wait`
        does. Returns the completed task; raises as `submit` and `wait` do.
        """
        return await self._generate(model_or_request, params, timeout, on_progress, idempotency_key)
