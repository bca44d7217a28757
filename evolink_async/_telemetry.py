"""
OpenTelemetry spans and counters, through `opentelemetry-api` alone (the
`otel` extra); nothing at all while nobody collects them.

- Without `opentelemetry-api`, or with no tracer or meter provider (neither
  the global one nor one handed to the client), no span, counter or
  attribute is made: a check is an attribute read and, while no global
  provider is set, a clock read. The global providers are looked up at most
  once a second until one is found (OpenTelemetry sets each once per
  process, so a provider found is kept). A provider counts as set when it is
  not one of the API's own placeholders (the proxy and the no-op ones).
- Spans: `evolink.generate`, `evolink.submit` (one create, its retries
  included), `evolink.wait`, `evolink.poll` (one poll request, for one task
  or a batch of them), `evolink.download`.
- Counters: `evolink.client.requests` (HTTP attempts to the API and files
  API, retries included), `evolink.client.retries`,
  `evolink.client.rate_limits` (429 replies) and `evolink.client.polls`
  (poll requests of the task watcher).
- Attributes hold methods, route templates (`/v1/tasks/{id}`), statuses,
  error class names, task ids and model ids: never a header, a query string,
  a URL of a result or the API key.

A poll runs in the client's shared watcher task, not in the waiter's, so the
watcher remembers the trace context of every waiter of a task
(`current_context`, taken when the wait starts) and makes each poll span a
child of the first waiter's span, linked to the spans of the others
(`poll_span`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from ._version import __version__

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.metrics import Counter, MeterProvider
    from opentelemetry.trace import Span, Tracer, TracerProvider

try:
    from opentelemetry import context as otel_context
    from opentelemetry import metrics as otel_metrics
    from opentelemetry import trace as otel_trace
except ImportError:  # the `otel` extra is not installed: telemetry stays off
    _INSTALLED = False
else:
    _INSTALLED = True

__all__ = [
    "GLOBAL",
    "Counters",
    "Telemetry",
    "mark_failed",
    "model_attribute",
    "otel_installed",
]

#: The instrumentation scope spans and counters are reported under.
SCOPE: Final = "evolink_async"
#: Seconds between two looks for a global provider while none is set: a
#: look costs microseconds (it reads the environment), a request far more.
RECHECK: Final = 1.0
#: Span attributes take these value types; anything else is left out.
Attributes = Mapping[str, str | int | float | bool]

_OFF: Final[contextlib.AbstractContextManager[None]] = contextlib.nullcontext()


def otel_installed() -> bool:
    """True when `opentelemetry-api` can be imported."""
    return _INSTALLED


def _placeholder(provider: object, api_package: str) -> bool:
    """True for a provider of the API package itself (proxy, no-op): nobody collects."""
    return type(provider).__module__.startswith(api_package)


class Counters:
    """The SDK's counters, made once per meter provider."""

    __slots__ = ("polls", "rate_limits", "requests", "retries")

    def __init__(self, provider: MeterProvider) -> None:
        meter = provider.get_meter(SCOPE, __version__)
        self.requests: Counter = meter.create_counter(
            "evolink.client.requests",
            unit="{request}",
            description="HTTP attempts sent to the EvoLink API and files API, retries included",
        )
        self.retries: Counter = meter.create_counter(
            "evolink.client.retries",
            unit="{retry}",
            description="API requests sent again after a transient failure",
        )
        self.rate_limits: Counter = meter.create_counter(
            "evolink.client.rate_limits",
            unit="{reply}",
            description="HTTP 429 replies from the EvoLink API",
        )
        self.polls: Counter = meter.create_counter(
            "evolink.client.polls",
            unit="{request}",
            description="Poll requests sent by the task watcher",
        )


class Telemetry:
    """
    One client's spans and counters: the providers handed to it, else the
    global ones once set.
    """

    __slots__ = (
        "_counters",
        "_meter_provider",
        "_next_meter_look",
        "_next_tracer_look",
        "_tracer",
        "_tracer_provider",
    )

    def __init__(
        self,
        *,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        self._tracer_provider = tracer_provider
        self._meter_provider = meter_provider
        self._tracer: Tracer | None = None
        self._counters: Counters | None = None
        self._next_tracer_look = 0.0
        self._next_meter_look = 0.0

    def tracer(self) -> Tracer | None:
        """The tracer, or None while no tracer provider is set."""
        tracer = self._tracer
        if tracer is not None or not _INSTALLED:
            return tracer
        now = time.monotonic()
        if now < self._next_tracer_look:
            return None
        self._next_tracer_look = now + RECHECK
        provider = self._tracer_provider or otel_trace.get_tracer_provider()
        if _placeholder(provider, "opentelemetry.trace"):
            return None
        self._tracer = provider.get_tracer(SCOPE, __version__)
        return self._tracer

    def counters(self) -> Counters | None:
        """The counters, or None while no meter provider is set."""
        counters = self._counters
        if counters is not None or not _INSTALLED:
            return counters
        now = time.monotonic()
        if now < self._next_meter_look:
            return None
        self._next_meter_look = now + RECHECK
        provider = self._meter_provider or otel_metrics.get_meter_provider()
        if _placeholder(provider, "opentelemetry.metrics"):
            return None
        self._counters = Counters(provider)
        return self._counters

    def span(
        self, name: str, attributes: Attributes | None = None, *, client: bool = False
    ) -> contextlib.AbstractContextManager[Span | None]:
        """
        A span made current for a `with` block (a child of the current one),
        yielding it; yielding None while tracing is off. `client` marks a
        span for a request to the API (`SpanKind.CLIENT`).
        """
        tracer = self.tracer()
        if tracer is None:
            return _OFF
        kind = otel_trace.SpanKind.CLIENT if client else otel_trace.SpanKind.INTERNAL
        return tracer.start_as_current_span(name, kind=kind, attributes=attributes)

    def current_context(self) -> Context | None:
        """The caller's trace context, to parent work done elsewhere; None while tracing is off."""
        if self.tracer() is None:
            return None
        return otel_context.get_current()

    def poll_span(
        self, contexts: Sequence[Context], attributes: Attributes
    ) -> contextlib.AbstractContextManager[Span | None]:
        """
        The span of one poll request made for waiters elsewhere: a child of
        the first of `contexts` (the first waiter's), linked to the spans of
        the others; a root span when there are none.
        """
        tracer = self.tracer()
        if tracer is None:
            return _OFF
        parent = contexts[0] if contexts else None
        links: list[Any] = []
        seen: set[int] = set()
        for context in contexts:
            span_context = otel_trace.get_current_span(context).get_span_context()
            if span_context.is_valid and span_context.span_id not in seen:
                seen.add(span_context.span_id)
                if context is not parent:
                    links.append(otel_trace.Link(span_context))
        return tracer.start_as_current_span(
            "evolink.poll",
            context=parent,
            kind=otel_trace.SpanKind.CLIENT,
            attributes=attributes,
            links=links,
        )


def model_attribute(model_or_request: object) -> Attributes | None:
    """The `evolink.model` attribute of a model id or request object (None: no model)."""
    model = getattr(model_or_request, "model", model_or_request)
    return {"evolink.model": model} if isinstance(model, str) and model else None


def mark_failed(span: Span, error: BaseException) -> None:
    """Record on `span` that its work met `error` (an exception event, status ERROR)."""
    span.record_exception(error)
    span.set_status(otel_trace.Status(otel_trace.StatusCode.ERROR, type(error).__name__))


#: The telemetry of clients given no provider: the global providers.
GLOBAL: Final = Telemetry()
