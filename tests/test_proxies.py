"""
Proxies: `proxy=`, and `HTTP_PROXY` / `NO_PROXY` read with `trust_env` (the
default), for API requests and result downloads alike, against a real
forward proxy on loopback (an aiohttp app taking absolute-form requests and
forwarding them to the mock, counting what it saw).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final

import aiohttp
import attrs
import pytest
from aiohttp import web
from multidict import CIMultiDict

from evolink_async import EvoLinkClient, ValidationError
from evolink_async.testing import MockEvoLink

from .conftest import make_client

pytestmark = pytest.mark.anyio

MODEL: Final = "wan2.5-image-to-video"
WAN: dict[str, Any] = {"prompt": "a proxy test", "image_urls": ["https://example.com/a.jpg"]}
#: Every variable urllib's `getproxies()` / `proxy_bypass()` read.
PROXY_VARIABLES = [
    f"{name}_{suffix}" for name in ("http", "https", "all", "no") for suffix in ("proxy", "PROXY")
] + ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"]
#: Hop-by-hop headers a proxy does not pass on (RFC 9110 7.6.1), and what it recomputes.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)


@attrs.frozen
class Forwarded:
    """One request the proxy received: method, absolute target, headers as sent to it."""

    method: str
    target: str
    headers: CIMultiDict[str]


class LoopbackProxy:
    """A forward HTTP proxy on 127.0.0.1 that records every request it forwards."""

    def __init__(self) -> None:
        self.seen: list[Forwarded] = []
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.url = ""

    async def __aenter__(self) -> LoopbackProxy:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{port}"
        # The proxy's own upstream session must not itself use a proxy.
        self._session = aiohttp.ClientSession(trust_env=False, auto_decompress=False)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def targets(self, prefix: str = "") -> list[str]:
        """The absolute URLs forwarded whose path starts with `prefix`."""
        return [seen.target for seen in self.seen if _path(seen.target).startswith(prefix)]

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        target = request.raw_path
        if not target.startswith("http://"):
            return web.Response(status=400, text="not a proxy request (origin-form)")
        self.seen.append(Forwarded(request.method, target, request.headers.copy()))
        headers = CIMultiDict(
            (name, value)
            for name, value in request.headers.items()
            if name.lower() not in HOP_BY_HOP
        )
        assert self._session is not None
        async with self._session.request(
            request.method,
            target,
            headers=headers,
            data=await request.read() if request.can_read_body else None,
            allow_redirects=False,
        ) as upstream:
            body = await upstream.read()
            reply_headers = CIMultiDict(
                (name, value)
                for name, value in upstream.headers.items()
                if name.lower() not in HOP_BY_HOP
            )
            return web.Response(status=upstream.status, body=body, headers=reply_headers)


def _path(url: str) -> str:
    return "/" + url.split("://", 1)[1].partition("/")[2]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No proxy variable from the machine running the tests."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
async def proxy() -> AsyncIterator[LoopbackProxy]:
    async with LoopbackProxy() as server:
        yield server


async def test_proxy_argument_carries_api_requests_and_downloads(
    clean_env: pytest.MonkeyPatch, mock: MockEvoLink, proxy: LoopbackProxy, tmp_path: Path
) -> None:
    async with make_client(mock, proxy=proxy.url, default_headers={"X-Team": "video"}) as client:
        task = await client.generate(MODEL, **WAN)
        path = await client.download(task, tmp_path / "out.mp4")
    assert path.read_bytes() == mock.video_bytes(task.id)
    creates = proxy.targets("/v1/videos/generations")
    polls = proxy.targets(f"/v1/tasks/{task.id}")
    downloads = proxy.targets("/files/videos/")
    assert len(creates) == 1 and creates[0] == f"{mock.url}/v1/videos/generations"
    assert len(polls) == len(mock.stats.polls[task.id]) >= 1
    assert len(downloads) == 1
    # What reached the proxy: the key and default headers on API requests only.
    for seen in proxy.seen:
        api = _path(seen.target).startswith("/v1/")
        assert ("Authorization" in seen.headers) is api, seen
        assert ("X-Team" in seen.headers) is api, seen
    # Everything the mock saw came through the proxy.
    assert len(proxy.seen) == len(mock.requests_log)


async def test_http_proxy_from_the_environment_is_used_by_default(
    clean_env: pytest.MonkeyPatch, mock: MockEvoLink, proxy: LoopbackProxy, tmp_path: Path
) -> None:
    clean_env.setenv("HTTP_PROXY", proxy.url)
    async with make_client(mock) as client:
        task = await client.generate(MODEL, **WAN)
        await client.download(task, tmp_path / "out.mp4")
        await client.get_credits()
    assert len(proxy.targets("/v1/videos/generations")) == 1
    assert len(proxy.targets("/files/videos/")) == 1
    assert proxy.targets("/v1/credits") == [f"{mock.url}/v1/credits"]
    assert len(proxy.seen) == len(mock.requests_log)


async def test_lowercase_http_proxy_counts_too(
    clean_env: pytest.MonkeyPatch, mock: MockEvoLink, proxy: LoopbackProxy
) -> None:
    clean_env.setenv("http_proxy", proxy.url.removeprefix("http://"))  # no scheme: http://
    async with make_client(mock) as client:
        await client.get_credits()
    assert proxy.targets("/v1/credits") == [f"{mock.url}/v1/credits"]


async def test_no_proxy_sends_its_hosts_direct(
    clean_env: pytest.MonkeyPatch, mock: MockEvoLink, proxy: LoopbackProxy, tmp_path: Path
) -> None:
    clean_env.setenv("HTTP_PROXY", proxy.url)
    clean_env.setenv("NO_PROXY", "localhost,127.0.0.1")
    async with make_client(mock) as client:
        task = await client.generate(MODEL, **WAN)
        await client.download(task, tmp_path / "out.mp4")
    assert proxy.seen == []
    assert mock.stats.tasks_created == 1
    assert any(seen.route == "GET /files/videos/{name}" for seen in mock.requests_log)


async def test_trust_env_false_ignores_the_environment(
    clean_env: pytest.MonkeyPatch, mock: MockEvoLink, proxy: LoopbackProxy
) -> None:
    clean_env.setenv("HTTP_PROXY", proxy.url)
    async with make_client(mock, trust_env=False) as client:
        await client.get_credits()
    assert proxy.seen == []
    assert [seen.route for seen in mock.requests_log] == ["GET /v1/credits"]


async def test_proxy_argument_wins_over_the_environment(
    clean_env: pytest.MonkeyPatch, mock: MockEvoLink, proxy: LoopbackProxy
) -> None:
    # As in httpx: NO_PROXY applies to the environment's proxies, not to proxy=.
    clean_env.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    clean_env.setenv("NO_PROXY", "127.0.0.1")
    async with make_client(mock, proxy=proxy.url) as client:
        await client.get_credits()
    assert proxy.targets("/v1/credits") == [f"{mock.url}/v1/credits"]


async def test_proxy_credentials_go_to_the_proxy_only(
    clean_env: pytest.MonkeyPatch, mock: MockEvoLink, proxy: LoopbackProxy
) -> None:
    with_user = proxy.url.replace("http://", "http://team:s3cret-pass@")
    async with make_client(mock, proxy=with_user) as client:
        assert "s3cret" not in repr(client)
        await client.get_credits()
    (seen,) = proxy.seen
    assert seen.headers["Proxy-Authorization"].startswith("Basic ")
    (reached,) = mock.requests_log
    assert "Proxy-Authorization" not in reached.headers


async def test_a_session_of_the_caller_goes_through_the_proxy_too(
    clean_env: pytest.MonkeyPatch, mock: MockEvoLink, proxy: LoopbackProxy
) -> None:
    async with (
        aiohttp.ClientSession() as session,
        make_client(mock, session=session, proxy=proxy.url) as client,
    ):
        await client.get_credits()
    assert proxy.targets("/v1/credits") == [f"{mock.url}/v1/credits"]


async def test_https_proxy_from_the_environment_is_ignored_as_aiohttp_does(
    clean_env: pytest.MonkeyPatch, mock: MockEvoLink, caplog: pytest.LogCaptureFixture
) -> None:
    clean_env.setenv("HTTP_PROXY", "https://127.0.0.1:9")
    async with make_client(mock) as client:
        await client.get_credits()
    assert [seen.route for seen in mock.requests_log] == ["GET /v1/credits"]
    assert "not supported" in caplog.text


@pytest.mark.parametrize(
    ("proxy_url", "rule"),
    [
        ("socks5://user:hunter2-secret@127.0.0.1:1080", "must start with http:// or https://"),
        ("http://user:hunter2-secret@", "must name a host"),
        ("http://user:hunter2-secret@proxy:99999", "not a valid URL"),
        ("http://user:hunter2-secret@pro xy:3128", "printable ASCII"),
        (3128, "must be a URL string"),
    ],
)
def test_a_bad_proxy_is_refused_without_showing_its_password(proxy_url: object, rule: str) -> None:
    with pytest.raises(ValidationError) as caught:
        EvoLinkClient("sk-test-key-0000", proxy=proxy_url)  # type: ignore[arg-type]
    assert rule in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_trust_env_must_be_a_bool() -> None:
    with pytest.raises(ValidationError, match="trust_env"):
        EvoLinkClient("sk-test-key-0000", trust_env="yes")  # type: ignore[arg-type]
