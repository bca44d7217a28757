"""
A local fake of the EvoLink API, for testing code that uses evolink_async.

`MockEvoLink` runs a real aiohttp server on loopback (random port) that
behaves like the documented API: tasks that go pending -> processing ->
completed (or failed/cancelled) on a scalable clock, progress, result videos
it serves itself (with `Range` support), `Idempotency-Key` replays, error
bodies shaped like the API's, credits, the files API, callbacks, and faults
on demand::

    from evolink_async import EvoLinkClient
    from evolink_async.testing import Fault, FaultPlan, MockEvoLink

    async with MockEvoLink(time_scale=0.01) as mock:
        client = EvoLinkClient(mock.api_key, base_url=mock.url, files_base_url=mock.url)
        mock.inject(Fault.RATE_LIMIT, route="POST /v1/videos/generations")
        async with client:
            task = await client.generate(
                "seedance-2.0-image-to-video",
                prompt="a cat",
                image_urls=["https://example.com/cat.png"],
            )
        assert mock.stats.requests["POST /v1/videos/generations"] == 2

Conventions worth knowing:

- `time_scale` multiplies every duration: 0.01 turns a 165 s task into 1.65 s.
- A prompt containing `mock:fail=<code>` makes the task fail with that error
  code; `mock:cancel` makes it end `cancelled`.
- `seed` makes run times, outcomes, faults and ids repeatable.
- `mock.stats` counts what the server saw (`requests` by route key such as
  `"GET /v1/tasks/{id}"`, `tasks_created`, `creates_per_key`, `polls`, ...);
  `mock.tasks` holds each task's plan; `mock.requests_log` the recent requests.
- `MockEvoLink(rate_limit=RateLimit(creates_per_second=20))` limits each
  key (429 with `Retry-After` past it); `GET /_mock/stats` serves the
  counters as JSON to other processes.
- `mock.inject(Fault.X, route=..., times=...)` queues faults;
  `mock.faults = FaultPlan(rate_limit=0.1, ...)` draws them at random.
"""

from ._faults import Fault, FaultPlan
from ._limits import RateLimit
from ._server import MockEvoLink, serve_forever
from ._state import CallbackDelivery, MockStats, MockTask, RecordedRequest

__all__ = [
    "CallbackDelivery",
    "Fault",
    "FaultPlan",
    "MockEvoLink",
    "MockStats",
    "MockTask",
    "RateLimit",
    "RecordedRequest",
    "serve_forever",
]

# Public names report this module (as `evolink_async` does for its own), so
# reprs and pickles name the stable path, not the private file. Written out
# here because this package imports nothing else of the SDK.
for _name in __all__:
    _value = globals()[_name]
    if getattr(_value, "__module__", "").startswith(f"{__name__}._"):
        _value.__module__ = __name__
del _name, _value
