"""
evolink_async: an asyncio SDK, task watcher and batch runner for EvoLink's
video-generation API.

    async with EvoLinkClient() as client:
        task = await client.generate(
            "seedance-2.0-image-to-video",
            prompt="The camera slowly pushes in",
            image_urls=["https://example.com/first-frame.jpg"],
        )
        print(task.video_url)

This module is the whole public surface; `evolink_async.models` (request
classes) and `evolink_async.testing` (the `MockEvoLink` fake server) are the
public submodules.
"""

from ._api.hooks import RequestEvent
from ._api.retry import RetryPolicy
from ._batch.jobs import BatchStats, Job, JobOutcome
from ._batch.runner import BatchRun
from ._batch.shared_budget import SharedBudget
from ._client import EvoLinkClient
from ._errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ClientClosedError,
    EvoLinkError,
    IdempotencyConflictError,
    InsufficientCreditsError,
    JournalError,
    MalformedReplyError,
    NotFoundError,
    NotSubmittedError,
    NotSupportedError,
    PermissionDeniedError,
    Problem,
    RateLimitError,
    RequestTooLargeError,
    ServerError,
    TaskCancelledError,
    TaskFailedError,
    ValidationError,
    WaitTimeoutError,
)
from ._models import (
    MODELS,
    HappyHorseImageToVideo,
    HappyHorseImageToVideoJobDict,
    HappyHorseImageToVideoParams,
    JobDict,
    ModelId,
    RawRequest,
    Request,
    SeedanceFastImageToVideo,
    SeedanceFastImageToVideoJobDict,
    SeedanceFastImageToVideoParams,
    SeedanceImageToVideo,
    SeedanceImageToVideoJobDict,
    SeedanceImageToVideoParams,
    Wan25ImageToVideo,
    Wan25ImageToVideoJobDict,
    Wan25ImageToVideoParams,
    Wan27ImageToVideo,
    Wan27ImageToVideoJobDict,
    Wan27ImageToVideoParams,
)
from ._public import rehome
from ._values import (
    RETRYABLE_ERROR_CODES,
    Credits,
    Task,
    TaskError,
    TaskStatus,
    UploadedFile,
    Usage,
)
from ._version import __version__
from ._watch.policy import PollPolicy

__all__ = [
    "MODELS",
    "RETRYABLE_ERROR_CODES",
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "BatchRun",
    "BatchStats",
    "ClientClosedError",
    "Credits",
    "EvoLinkClient",
    "EvoLinkError",
    "HappyHorseImageToVideo",
    "HappyHorseImageToVideoJobDict",
    "HappyHorseImageToVideoParams",
    "IdempotencyConflictError",
    "InsufficientCreditsError",
    "Job",
    "JobDict",
    "JobOutcome",
    "JournalError",
    "MalformedReplyError",
    "ModelId",
    "NotFoundError",
    "NotSubmittedError",
    "NotSupportedError",
    "PermissionDeniedError",
    "PollPolicy",
    "Problem",
    "RateLimitError",
    "RawRequest",
    "Request",
    "RequestEvent",
    "RequestTooLargeError",
    "RetryPolicy",
    "SeedanceFastImageToVideo",
    "SeedanceFastImageToVideoJobDict",
    "SeedanceFastImageToVideoParams",
    "SeedanceImageToVideo",
    "SeedanceImageToVideoJobDict",
    "SeedanceImageToVideoParams",
    "ServerError",
    "SharedBudget",
    "Task",
    "TaskCancelledError",
    "TaskError",
    "TaskFailedError",
    "TaskStatus",
    "UploadedFile",
    "Usage",
    "ValidationError",
    "WaitTimeoutError",
    "Wan25ImageToVideo",
    "Wan25ImageToVideoJobDict",
    "Wan25ImageToVideoParams",
    "Wan27ImageToVideo",
    "Wan27ImageToVideoJobDict",
    "Wan27ImageToVideoParams",
    "__version__",
]

rehome(__name__, globals(), __all__)
del rehome
