"""The public surface: complete, sorted, documented, and matching PUBLIC-API names."""

from __future__ import annotations

import inspect
from types import ModuleType

import pytest

import evolink_async
import evolink_async.models
import evolink_async.testing
import evolink_async.webhooks

PUBLIC_MODULES = [
    evolink_async,
    evolink_async.models,
    evolink_async.testing,
    evolink_async.webhooks,
]
#: Where each public module's own names are defined (itself or its private rooms).
HOMES = {
    "evolink_async": "evolink_async.",
    "evolink_async.models": "evolink_async._models",
    "evolink_async.testing": "evolink_async.testing",
    "evolink_async.webhooks": "evolink_async.webhooks",
}


def isort_key(name: str) -> tuple[int, str]:
    """Constants, then classes, then functions: the order ruff's RUF022 keeps."""
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


@pytest.mark.parametrize("module", PUBLIC_MODULES, ids=lambda m: m.__name__)
def test_all_is_sorted_and_complete(module: ModuleType) -> None:
    names = list(module.__all__)
    assert names == sorted(names, key=isort_key)
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not inspect.ismodule(value)
        and getattr(value, "__module__", module.__name__).startswith(HOMES[module.__name__])
        and name not in {"annotations", "logger"}
    }
    assert public <= set(names), public - set(names)


@pytest.mark.parametrize("module", PUBLIC_MODULES, ids=lambda m: m.__name__)
def test_every_public_name_has_a_docstring(module: ModuleType) -> None:
    assert module.__doc__
    for name in module.__all__:
        value = getattr(module, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert inspect.getdoc(value), f"{module.__name__}.{name} has no docstring"
        if inspect.isclass(value):
            for attr, member in vars(value).items():
                if attr.startswith("_") or not callable(member):
                    continue
                assert inspect.getdoc(member), f"{name}.{attr} has no docstring"


def test_names_from_the_public_api_contract_are_importable() -> None:
    contract = [
        "EvoLinkClient",
        "PollPolicy",
        "RawRequest",
        "MODELS",
        "Task",
        "TaskStatus",
        "Usage",
        "TaskError",
        "Credits",
        "UploadedFile",
        "SeedanceImageToVideo",
        "SeedanceFastImageToVideo",
        "HappyHorseImageToVideo",
        "Wan27ImageToVideo",
        "Wan25ImageToVideo",
        "EvoLinkError",
        "ValidationError",
        "APIError",
        "BadRequestError",
        "AuthenticationError",
        "InsufficientCreditsError",
        "PermissionDeniedError",
        "NotFoundError",
        "RequestTooLargeError",
        "RateLimitError",
        "ServerError",
        "APIConnectionError",
        "APITimeoutError",
        "TaskFailedError",
        "TaskCancelledError",
        "WaitTimeoutError",
    ]
    missing = [name for name in contract if not hasattr(evolink_async, name)]
    assert missing == []
    assert evolink_async.models.MODELS is evolink_async.MODELS
    assert hasattr(evolink_async.testing, "MockEvoLink")


def test_error_tree_matches_the_contract() -> None:
    e = evolink_async
    assert issubclass(e.ValidationError, ValueError)
    assert issubclass(e.WaitTimeoutError, TimeoutError)
    assert issubclass(e.APITimeoutError, e.APIConnectionError)
    for cls in (
        e.BadRequestError,
        e.AuthenticationError,
        e.InsufficientCreditsError,
        e.PermissionDeniedError,
        e.NotFoundError,
        e.RequestTooLargeError,
        e.RateLimitError,
        e.ServerError,
    ):
        assert issubclass(cls, e.APIError)
    for base in (e.APIError, e.APIConnectionError, e.TaskFailedError, e.TaskCancelledError):
        assert issubclass(base, e.EvoLinkError)
    assert not issubclass(e.TaskFailedError, e.APIError)


def test_task_status_values_are_the_api_strings() -> None:
    status = evolink_async.TaskStatus
    assert [s.value for s in status] == [
        "pending",
        "processing",
        "completed",
        "failed",
        "cancelled",
        "unknown",
    ]
    assert status.parse("completed") is status.COMPLETED
    assert status.parse("never-heard-of-it") is status.UNKNOWN
