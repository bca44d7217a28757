"""
Callback hosts: which host a URL names, read as URL parsers read it, and
whether that host may receive the API's callbacks.

The pages forbid callbacks to "private IP addresses (127.0.0.1, 10.x.x.x,
172.16-31.x.x, 192.168.x.x, etc.)", and API-NOTES says "no private or
loopback addresses". Read broadly, an address literal must be a public
unicast address: loopback, private, shared (carrier-grade NAT), link-local,
multicast, broadcast, unspecified, documentation, benchmarking and other
reserved ranges are refused (`_IPV4_RANGES`, `_IPV6_RANGES`; IPv6 outside
2000::/3 is reserved). IPv6 forms that carry an IPv4 address (IPv4-mapped,
IPv4-compatible, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) are judged by that
IPv4 address too. The SDK does not resolve names, so a DNS name passes, except
the names that always mean this machine (`localhost`, `*.localhost`, and the
loopback aliases of common hosts files).

A host is judged as the server's URL parser will read it, not only as
`urllib.parse` does. WHATWG URL parsers (browsers, Node, most HTTP stacks) and
IDNA read an http(s) URL this way, and so does `whatwg_host`:

- C0 controls and spaces around the URL, and tabs and newlines anywhere in
  it, are dropped;
- the authority ends at `/`, `\\`, `?` or `#` (a backslash is a path
  separator), and the host follows its last `@`;
- the host is percent-decoded, then mapped as IDNA's UTS 46 does: fullwidth
  letters and digits and other compatibility forms to ASCII (NFKC), upper to
  lower case, the ideographic full stops U+3002, U+FF0E and U+FF61 to `.`,
  invisible characters (soft hyphen, zero-width space, ...) dropped;
- a host whose last label is a number is IPv4 in WHATWG's reading: one to
  four parts, each decimal, octal (`0177`) or hex (`0x7f`), the last filling
  the remaining bytes (`127.1`, `2130706433`, `0x7f000001`).

Trailing dots and an IPv6 zone id (`%eth0`) are ignored, as resolvers ignore
them. `urllib.parse`'s reading of the host is judged as well, so a URL that
parsers read differently (`https://a.example\\@127.0.0.1/`) is refused if
any reading names a host that is not public.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from typing import Final
from urllib.parse import unquote, urlsplit

__all__ = [
    "LOCALHOST_NAMES",
    "ascii_host",
    "callback_host_problem",
    "whatwg_host",
    "whatwg_ipv4",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Names that always mean this machine besides `*.localhost` (RFC 6761): the
#: loopback aliases of the hosts files Linux distributions ship.
LOCALHOST_NAMES: Final = frozenset(
    {
        "localhost",
        "localhost.localdomain",
        "localhost4",
        "localhost4.localdomain4",
        "localhost6",
        "localhost6.localdomain6",
        "ip6-localhost",
        "ip6-loopback",
    }
)

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network

# First match wins, so the narrower ranges come first. The IANA special-purpose
# registries, less the ranges that are globally reachable unicast.
_IPV4_RANGES: Final[tuple[tuple[ipaddress.IPv4Network, str], ...]] = (
    (_V4("0.0.0.0/32"), "an unspecified"),
    (_V4("0.0.0.0/8"), "a reserved ('this network')"),
    (_V4("10.0.0.0/8"), "a private"),
    (_V4("100.64.0.0/10"), "a shared (carrier-grade NAT)"),
    (_V4("127.0.0.0/8"), "a loopback"),
    (_V4("169.254.0.0/16"), "a link-local"),
    (_V4("172.16.0.0/12"), "a private"),
    (_V4("192.0.0.0/24"), "a reserved (IETF protocol assignments)"),
    (_V4("192.0.2.0/24"), "a documentation (reserved)"),
    (_V4("192.88.99.0/24"), "a reserved (6to4 relay anycast)"),
    (_V4("192.168.0.0/16"), "a private"),
    (_V4("198.18.0.0/15"), "a benchmarking (reserved)"),
    (_V4("198.51.100.0/24"), "a documentation (reserved)"),
    (_V4("203.0.113.0/24"), "a documentation (reserved)"),
    (_V4("224.0.0.0/4"), "a multicast"),
    (_V4("255.255.255.255/32"), "a broadcast"),
    (_V4("240.0.0.0/4"), "a reserved"),
)
_IPV6_RANGES: Final[tuple[tuple[ipaddress.IPv6Network, str], ...]] = (
    (_V6("::/128"), "an unspecified"),
    (_V6("::1/128"), "a loopback"),
    (_V6("fc00::/7"), "a private (unique local)"),
    (_V6("fe80::/10"), "a link-local"),
    (_V6("fec0::/10"), "a private (site-local)"),
    (_V6("ff00::/8"), "a multicast"),
    # Teredo (2001::/32) is in here: its client address is hidden (XORed).
    (_V6("2001::/23"), "a reserved (IETF protocol assignments)"),
    (_V6("2001:db8::/32"), "a documentation (reserved)"),
    (_V6("3fff::/20"), "a documentation (reserved)"),
    (_V6("5f00::/16"), "a reserved (segment routing)"),
)
#: IPv6 global unicast: everything outside it is reserved or special.
_GLOBAL_UNICAST: Final = _V6("2000::/3")
# IPv6 forms that carry an IPv4 address: (range, name, bit offset of the IPv4
# address, whether a public IPv4 inside makes the IPv6 address public).
# IPv4-compatible and IPv4-translated addresses are deprecated or host-local:
# they are judged by their IPv4 address for the message, then refused anyway.
_EMBEDDING: Final[tuple[tuple[ipaddress.IPv6Network, str, int, bool], ...]] = (
    (_V6("::ffff:0:0/96"), "IPv4-mapped", 0, True),
    (_V6("64:ff9b::/96"), "NAT64", 0, True),
    (_V6("2002::/16"), "6to4", 80, True),
    (_V6("::ffff:0:0:0/96"), "IPv4-translated", 0, False),
    (_V6("::/96"), "IPv4-compatible", 0, False),
)

_C0_OR_SPACE: Final = "".join(chr(code) for code in range(0x21))
_TAB_OR_NEWLINE: Final = str.maketrans("", "", "\t\n\r")
_SCHEME: Final = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_AUTHORITY_END: Final = re.compile(r"[/\\?#]")
_RESOLVER_STOP: Final = re.compile(r"[\x00\t\n\v\f\r ]")
_FULL_STOPS: Final = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})
_HEX: Final = frozenset("0123456789abcdefABCDEF")
_OCTAL: Final = frozenset("01234567")
_DECIMAL: Final = frozenset("0123456789")


def whatwg_host(url: str) -> str | None:
    """
    The host of an http(s) `url` as a WHATWG URL parser delimits it, still raw
    (not decoded; an IPv6 literal keeps its brackets), or None when the URL is
    not http(s) or has no authority.
    """
    text = url.strip(_C0_OR_SPACE).translate(_TAB_OR_NEWLINE)
    scheme = _SCHEME.match(text)
    if scheme is None or scheme.group(1).lower() not in ("http", "https"):
        return None
    # Special schemes skip any run of slashes and backslashes before the
    # authority ("https:\\\\host", "https:host" and "https:////host" all name host).
    rest = text[scheme.end() :].lstrip("/\\")
    authority = _AUTHORITY_END.split(rest, maxsplit=1)[0]
    host_and_port = authority.rpartition("@")[2]
    if host_and_port.startswith("["):
        end = host_and_port.find("]")
        return host_and_port if end == -1 else host_and_port[: end + 1]
    return host_and_port.partition(":")[0]


def _visible(char: str) -> bool:
    """False for what UTS 46 drops from a host: format characters and variation selectors."""
    if unicodedata.category(char) == "Cf":
        return False
    code = ord(char)
    return not (
        code == 0x034F  # combining grapheme joiner
        or 0x180B <= code <= 0x180F  # Mongolian variation selectors
        or 0xFE00 <= code <= 0xFE0F
        or 0xE0100 <= code <= 0xE01EF
    )


def ascii_host(text: str) -> str:
    """A host as IDNA maps it before any label is checked: NFKC, case-folded, dots unified."""
    kept = "".join(char for char in text if _visible(char))
    mapped = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", kept).casefold())
    return mapped.translate(_FULL_STOPS)


def _ipv4_part(part: str) -> int | None:
    """One part of a WHATWG IPv4 host: decimal, octal (leading 0) or hex (0x)."""
    if not part:
        return None
    digits, radix, allowed = part, 10, _DECIMAL
    if part[:2] in ("0x", "0X"):
        digits, radix, allowed = part[2:], 16, _HEX
    elif len(part) > 1 and part[0] == "0":
        digits, radix, allowed = part[1:], 8, _OCTAL
    if not digits:
        return 0  # "0x" alone is zero
    if not set(digits) <= allowed:
        return None
    return int(digits, radix)


def _ends_in_number(host: str) -> bool:
    """WHATWG's test for a host to be parsed as IPv4: its last label is a number."""
    parts = host.split(".")
    if parts[-1] == "" and len(parts) > 1:
        parts.pop()
    last = parts[-1]
    if last and set(last) <= _DECIMAL:
        return True
    return last[:2] in ("0x", "0X") and set(last[2:]) <= _HEX


def whatwg_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """
    The IPv4 address a WHATWG URL parser reads in an ASCII `host`, or None
    when the host is not one (a name, or a number no parser accepts).

    `127.1`, `0x7f.1`, `0177.0.0.1` and `2130706433` are all 127.0.0.1; one
    trailing dot is allowed.
    """
    if not _ends_in_number(host):
        return None
    parts = host.split(".")
    if parts[-1] == "" and len(parts) > 1:
        parts.pop()
    if len(parts) > 4:
        return None
    numbers = [_ipv4_part(part) for part in parts]
    if any(number is None for number in numbers):
        return None
    values = [number for number in numbers if number is not None]
    if any(value > 255 for value in values[:-1]) or values[-1] >= 256 ** (5 - len(values)):
        return None
    address = values[-1]
    for index, value in enumerate(values[:-1]):
        address += value * 256 ** (3 - index)
    return ipaddress.IPv4Address(address)


def _ipv4_reason(ip: ipaddress.IPv4Address) -> str | None:
    for network, what in _IPV4_RANGES:
        if ip in network:
            return f"{what} address"
    return None


_UNSPECIFIED_V6: Final = ipaddress.IPv6Address("::")
_LOOPBACK_V6: Final = ipaddress.IPv6Address("::1")


def _ipv6_reason(ip: ipaddress.IPv6Address) -> str | None:
    # Checked before the embedding forms: both are also in ::/96.
    if ip == _UNSPECIFIED_V6:
        return "an unspecified address"
    if ip == _LOOPBACK_V6:
        return "a loopback address"
    for network, form, offset, public_inside in _EMBEDDING:
        if ip in network:
            inner = ipaddress.IPv4Address((int(ip) >> offset) & 0xFFFFFFFF)
            reason = _ipv4_reason(inner)
            if reason is not None:
                return f"{reason} ({inner}) in {form} form"
            if public_inside:
                return None
            break
    for network, what in _IPV6_RANGES:
        if ip in network:
            return f"{what} address"
    return None if ip in _GLOBAL_UNICAST else "a reserved address"


def _address(text: str) -> IPAddress | None:
    """The IP literal a decoded, mapped host stands for: IPv6, or IPv4 as WHATWG reads it."""
    if ":" in text:
        try:
            return ipaddress.IPv6Address(text)
        except ValueError:
            return None
    return whatwg_ipv4(text)


def _judge(raw: str) -> str | None:
    """Why the raw host (as a URL holds it) may not receive callbacks, or None."""
    host = ascii_host(unquote(raw))
    if host.startswith("["):
        host = host[1:].partition("]")[0]
    name = host.partition("%")[0].rstrip(".")
    if name in LOCALHOST_NAMES or name.endswith(".localhost"):
        return f"host {raw!r} is loopback ({name!r} always names this machine)"
    # Resolvers stop reading a numeric host at whitespace or a NUL ("127.0.0.1 x",
    # "127.0.0.1%00.example.com"): inet_aton takes what comes before.
    for candidate in dict.fromkeys((name, _RESOLVER_STOP.split(name, maxsplit=1)[0])):
        ip = _address(candidate)
        if ip is None:
            continue
        reason = _ipv4_reason(ip) if isinstance(ip, ipaddress.IPv4Address) else _ipv6_reason(ip)
        if reason is not None:
            shown = f"host {raw!r}" if raw.strip("[]") == str(ip) else f"host {raw!r} ({ip})"
            return f"{shown} is {reason}"
    return None


def callback_host_problem(url: str) -> str | None:
    """
    Why the host of `url` may not receive the API's callbacks, in words, or
    None when every reading of it names a public host (or a DNS name).

    Never raises.
    """
    readings: list[str] = []
    whatwg = whatwg_host(url)
    if whatwg:
        readings.append(whatwg)
    try:
        hostname = urlsplit(url).hostname
    except ValueError:
        hostname = None
    if hostname:
        readings.append(f"[{hostname}]" if ":" in hostname else hostname)
    for raw in dict.fromkeys(readings):
        problem = _judge(raw)
        if problem is not None:
            return (
                f"{problem}; the API refuses callbacks to private, loopback, link-local, "
                "multicast and reserved hosts"
            )
    return None
