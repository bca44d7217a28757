"""The public surface: complete, sorted, documented, and matching PUBLIC-API names."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pkgutil
import subprocess
import sys
from types import ModuleType

import pytest

import evolink_async
import evolink_async.models
import evolink_async.testing
import evolink_async.webhooks

#: `evolink_async.ray` needs the `ray` extra; without it the module is not walked.
HAS_RAY = importlib.util.find_spec("ray") is not None
PUBLIC_MODULES = [
    evolink_async,
    evolink_async.models,
    evolink_async.testing,
    evolink_async.webhooks,
    *([importlib.import_module("evolink_async.ray")] if HAS_RAY else []),
]
#: The private rooms each public module re-exports from.
HOMES = {
    "evolink_async": "evolink_async._",
    "evolink_async.models": "evolink_async._models",
    "evolink_async.testing": "evolink_async.testing._",
    "evolink_async.webhooks": "evolink_async.webhooks",
    "evolink_async.ray": "evolink_async.ray",
}


def own(module: ModuleType, value: object) -> bool:
    """True when `value` belongs to `module`: defined there, or in one of its rooms."""
    home = getattr(value, "__module__", module.__name__)
    if not isinstance(home, str):
        return False
    return home == module.__name__ or home.startswith(HOMES[module.__name__])


def test_every_public_module_is_listed() -> None:
    # Walk the package as anyio's test_all_attributes does: a module with no
    # underscore-led part in its dotted path is public, and must be tested here.
    found = {"evolink_async"}
    for info in pkgutil.walk_packages(evolink_async.__path__, "evolink_async."):
        parts = info.name.split(".")[1:]
        if not any(part.startswith("_") for part in parts):
            found.add(info.name)
    if not HAS_RAY:
        found.discard("evolink_async.ray")
    assert found == {module.__name__ for module in PUBLIC_MODULES}


def test_the_ray_face_without_ray_names_the_extra() -> None:
    # `sys.modules["ray"] = None` makes `import ray` fail as if Ray were absent.
    code = "import sys; sys.modules['ray'] = None; import evolink_async.ray"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 1
    assert "ImportError: evolink_async.ray needs Ray: pip install 'evolink-async[ray]'" in (
        result.stderr
    )


@pytest.mark.parametrize("module", PUBLIC_MODULES, ids=lambda m: m.__name__)
def test_public_names_report_the_public_module(module: ModuleType) -> None:
    for name in module.__all__:
        value = getattr(module, name)
        if not (inspect.isclass(value) or inspect.isfunction(value)):
            continue
        # A name of a submodule that the top level also exports reports the top level.
        expected = {module.__name__, "evolink_async"}
        assert value.__module__ in expected, f"{module.__name__}.{name}: {value.__module__}"
        # The stable path really leads to the object (pickle relies on it).
        assert getattr(importlib.import_module(value.__module__), value.__qualname__) is value


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
        and own(module, value)
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
