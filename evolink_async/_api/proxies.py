"""
Which proxy a request goes through: the client's `proxy=`, else (with
`trust_env`, the default) the environment's, read as aiohttp's `trust_env`
reads it.

- `proxy=` applies to every request of the client, API and result
  downloads alike; the environment is not read then.
- Otherwise `HTTP_PROXY` / `HTTPS_PROXY` (either case) name the proxy per
  URL scheme, and `NO_PROXY` the hosts that go direct: urllib's
  `getproxies()` and `proxy_bypass()`, what aiohttp's own `trust_env` uses.
  As in aiohttp, an `https://` proxy from the environment is ignored (with
  a warning), and a value without a scheme is taken as `http://`.
- Credentials go in the proxy URL (`http://user:password@proxy:3128`);
  aiohttp sends them as `Proxy-Authorization` to the proxy alone. `~/.netrc`
  is not read: aiohttp's `trust_env` reads it for every request (in a
  thread), and its entry for the API host would clash with the key.
- The proxies are read when the client is made (as httpx reads them), and
  whether a host bypasses them (`NO_PROXY`, through urllib, as aiohttp asks
  it) at the first request to it; the answer for each origin (scheme, host,
  port) is kept, so nothing is read per request.

Sessions are made with aiohttp's `trust_env` off: the proxy is passed per
request from here.
"""

from __future__ import annotations

import logging
import urllib.request
from typing import Final
from urllib.parse import urlsplit

__all__ = ["Proxies", "mask_proxy"]

logger = logging.getLogger("evolink_async")

#: Origins remembered; past this the table starts afresh (result hosts vary).
_MAX_ORIGINS: Final = 256
_SCHEMES: Final = ("http", "https")


def mask_proxy(url: str) -> str:
    """The proxy URL with any password replaced by `***`, for messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unreadable proxy URL>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")
    user = netloc[0].partition(":")[0]
    return parts._replace(netloc=f"{user}:***@{netloc[2]}").geturl()


class Proxies:
    """The proxy of each request of one client."""

    __slots__ = ("_by_origin", "_env", "_proxy", "active")

    def __init__(self, *, proxy: str | None, trust_env: bool) -> None:
        self._proxy = proxy
        #: The environment's proxies (`{"http": ..., "no": ...}`), as the client was made.
        self._env = urllib.request.getproxies() if trust_env and proxy is None else {}
        self._by_origin: dict[str, str | None] = {}
        #: False when no request can go through a proxy: nothing to look up.
        self.active: bool = proxy is not None or any(self._env.get(s) for s in _SCHEMES)

    def for_url(self, url: str) -> str | None:
        """The proxy URL for a request to `url`, or None to go direct."""
        if self._proxy is not None:
            return self._proxy
        if not self.active:
            return None
        scheme, _, rest = url.partition("://")
        origin = f"{scheme}://{rest.partition('/')[0]}"
        try:
            return self._by_origin[origin]
        except KeyError:
            pass
        proxy = self._from_env(url)
        if len(self._by_origin) >= _MAX_ORIGINS:
            self._by_origin.clear()
        self._by_origin[origin] = proxy
        return proxy

    def _from_env(self, url: str) -> str | None:
        try:
            parts = urlsplit(url)
            host = parts.hostname
        except ValueError:
            return None
        if parts.scheme not in _SCHEMES:
            return None
        if host and urllib.request.proxy_bypass(host):
            return None
        proxy = self._env.get(parts.scheme)
        if not proxy:
            return None
        if "://" not in proxy:
            proxy = f"http://{proxy}"
        if not proxy.startswith("http://"):
            logger.warning(
                "%s proxy %s from the environment is not supported (aiohttp tunnels "
                "through http:// proxies); going direct",
                parts.scheme.upper(),
                mask_proxy(proxy),
            )
            return None
        return proxy
