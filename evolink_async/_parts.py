"""
The parts of one client, made once from its checked settings: the
transport, the endpoints over it, uploads, the downloader and the watcher
(`make_parts`); and the parts a `with_options` view has of its own, over the
same session, slots, watcher and downloader (`view_parts`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, NamedTuple

import aiohttp

from ._api.downloads import Downloader
from ._api.endpoints import Endpoints
from ._api.proxies import Proxies
from ._api.transport import Transport
from ._api.uploads import Uploads
from ._config import ClientConfig
from ._telemetry import GLOBAL, Telemetry
from ._watch.watcher import Watcher

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

__all__ = ["Parts", "make_parts", "view_parts"]


class Parts(NamedTuple):
    """What a client owns, each made once."""

    transport: Transport
    endpoints: Endpoints
    uploads: Uploads
    downloader: Downloader
    watcher: Watcher


def make_parts(
    config: ClientConfig,
    session: aiohttp.ClientSession | None,
    tracer_provider: TracerProvider | None,
    meter_provider: MeterProvider | None,
    refresh_url: Callable[[str], Awaitable[str | None]],
) -> Parts:
    """The parts of a client configured by `config`; `refresh_url` re-reads a result URL."""
    telemetry = (
        GLOBAL
        if tracer_provider is None and meter_provider is None
        else Telemetry(tracer_provider=tracer_provider, meter_provider=meter_provider)
    )
    transport = Transport(
        api_key=config.api_key,
        max_concurrency=config.max_concurrency,
        retry=config.retry,
        timeout=config.timeout,
        session=session,
        headers=config.default_headers,
        proxies=Proxies(proxy=config.proxy, trust_env=config.trust_env),
        hooks=config.event_hooks,
        telemetry=telemetry,
    )
    endpoints = Endpoints(transport, base_url=config.base_url, files_base_url=config.files_base_url)
    downloader = Downloader(
        session=transport.download_session,
        retry=config.retry,
        read_timeout=config.read_timeout,
        max_parallel=max(2, config.max_concurrency // 4),
        refresh_url=refresh_url,
        max_bytes=config.max_video_bytes,
        deadline=config.download_timeout,
        proxy_for=transport.proxy_for,
        telemetry=telemetry,
    )
    watcher = Watcher(
        policy=config.poll,
        reader=endpoints,
        max_in_flight=config.max_concurrency,
        telemetry=telemetry,
    )
    return Parts(transport, endpoints, Uploads(endpoints), downloader, watcher)


def view_parts(
    transport: Transport, endpoints: Endpoints, config: ClientConfig, headers: Mapping[str, str]
) -> tuple[Transport, Endpoints, Uploads]:
    """
    A view's own transport (the options of `config`, `headers` added; the
    same session), endpoints and uploads.
    """
    view = transport.view(retry=config.retry, timeout=config.timeout, headers=headers)
    view_endpoints = endpoints.view(view)
    return view, view_endpoints, Uploads(view_endpoints)
