"""
`callback_url` hosts, as an attacker would write them.

The rule: https only, at most 2048 characters, and a host that is not a
loopback, private, shared, link-local, multicast, reserved or unspecified
address, nor a name that always means this machine. A host is judged as the
server's URL parser (WHATWG URL + IDNA) reads it, so every disguise of one
address is the same address: IPv4 in decimal, octal, hex and short forms,
fullwidth digits and letters, ideographic full stops, percent-encoding,
invisible characters, trailing dots, tabs and newlines, a backslash that ends
the authority, IPv6 forms that embed an IPv4 address (mapped, compatible,
NAT64, 6to4).

The address ranges below are this test's own list, from the IANA
special-purpose registries, not the SDK's. Hosts are generated: any address
of each range, in any of those spellings; public addresses and DNS names in
the same spellings must pass (the rule refuses a class, not every URL).
"""

from __future__ import annotations

import ipaddress
import socket
import string
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evolink_async import ValidationError, Wan25ImageToVideo
from evolink_async._models.hosts import whatwg_ipv4
from evolink_async._models.rules import callback_url_problems
from evolink_async.testing._rules import check_create

IPv4 = ipaddress.IPv4Address
IPv6 = ipaddress.IPv6Address

#: IPv4 ranges no callback may go to (RFC 6890 and successors).
NOT_PUBLIC_V4 = [
    ipaddress.IPv4Network(net)
    for net in (
        "0.0.0.0/8",  # this network
        "10.0.0.0/8",  # private
        "100.64.0.0/10",  # shared, carrier-grade NAT
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local (cloud metadata)
        "172.16.0.0/12",  # private
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # TEST-NET-1
        "192.88.99.0/24",  # 6to4 relay anycast
        "192.168.0.0/16",  # private
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # TEST-NET-2
        "203.0.113.0/24",  # TEST-NET-3
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, broadcast
    )
]
#: IPv6 ranges no callback may go to, besides the IPv4 embeddings below.
NOT_PUBLIC_V6 = [
    ipaddress.IPv6Network(net)
    for net in (
        "::1/128",
        "::/128",
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local
        "ff00::/8",  # multicast
        "2001:db8::/32",  # documentation
        "2001::/23",  # IETF protocol assignments (Teredo, benchmarking, ...)
        "100::/64",  # discard-only
    )
]
GLOBAL_UNICAST_V6 = ipaddress.IPv6Network("2000::/3")
SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
RULE = "the API refuses callbacks"

# --------------------------------------------------------- addresses


def addresses_in(networks: list[ipaddress.IPv4Network]) -> st.SearchStrategy[IPv4]:
    return st.sampled_from(networks).flatmap(
        lambda net: st.integers(int(net.network_address), int(net.broadcast_address)).map(IPv4)
    )


non_public_v4 = addresses_in(NOT_PUBLIC_V4)
public_v4 = (
    st.integers(0, 2**32 - 1)
    .map(IPv4)
    .filter(lambda ip: not any(ip in net for net in NOT_PUBLIC_V4))
)


@st.composite
def whatwg_forms(draw: st.DrawFn, ip: IPv4) -> str:
    """`ip` spelled as a WHATWG URL parser reads it: 1-4 parts, each dec/oct/hex."""
    value = int(ip)
    parts_count = draw(st.integers(1, 4))
    parts = [(value >> (8 * (3 - index))) & 0xFF for index in range(parts_count - 1)]
    parts.append(value & ((1 << (8 * (5 - parts_count))) - 1))
    texts = []
    for part in parts:
        radix = draw(st.sampled_from(["dec", "oct", "hex", "HEX"]))
        zeros = "0" * draw(st.integers(0, 2))
        if radix == "dec":
            texts.append(str(part))
        elif radix == "oct":
            texts.append("0" + zeros + format(part, "o"))
        else:
            digits = format(part, "x" if radix == "hex" else "X")
            texts.append(draw(st.sampled_from(["0x", "0X"])) + zeros + digits)
    return ".".join(texts)


def v4_spellings(ip_strategy: st.SearchStrategy[IPv4]) -> st.SearchStrategy[str]:
    return ip_strategy.flatmap(whatwg_forms)


EMBEDDINGS = ("mapped", "mapped-dotted", "compat", "nat64", "6to4")
#: Embeddings that reach the IPv4 address they carry (the others are deprecated).
REACHING = ("mapped", "mapped-dotted", "nat64", "6to4")


@st.composite
def embedded_v6(draw: st.DrawFn, ip: IPv4, forms: tuple[str, ...] = EMBEDDINGS) -> str:
    """An IPv6 literal that carries `ip`: IPv4-mapped, -compatible, NAT64 or 6to4."""
    value = int(ip)
    form = draw(st.sampled_from(forms))
    if form == "mapped-dotted":
        return draw(st.sampled_from(["::ffff:", "0:0:0:0:0:ffff:", "::FFFF:"])) + str(ip)
    if form == "mapped":
        address = IPv6((0xFFFF << 32) | value)
    elif form == "compat":
        address = IPv6(max(value, 2))  # :: and ::1 are not compatible forms
    elif form == "nat64":
        address = IPv6((0x64FF9B << 96) | value)
    else:
        address = IPv6((0x2002 << 112) | (value << 80) | draw(st.integers(0, 2**80 - 1)))
    return draw(st.sampled_from([address.compressed, address.exploded, address.compressed.upper()]))


def v6_in(networks: list[ipaddress.IPv6Network]) -> st.SearchStrategy[IPv6]:
    return st.sampled_from(networks).flatmap(
        lambda net: st.integers(int(net.network_address), int(net.broadcast_address)).map(IPv6)
    )


def _public_v6(ip: IPv6) -> bool:
    return (
        ip in GLOBAL_UNICAST_V6
        and ip not in SIX_TO_FOUR
        and not any(ip in net for net in NOT_PUBLIC_V6)
        and ip not in ipaddress.IPv6Network("3fff::/20")
        and ip not in ipaddress.IPv6Network("5f00::/16")
    )


public_v6 = (
    st.integers(int(GLOBAL_UNICAST_V6.network_address), int(GLOBAL_UNICAST_V6.broadcast_address))
    .map(IPv6)
    .filter(_public_v6)
)

LOCALHOST_NAMES = [
    "localhost",
    "localhost.localdomain",
    "localhost6",
    "localhost6.localdomain6",
    "ip6-localhost",
    "ip6-loopback",
]
label = st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=10)
localhost_names = st.one_of(
    st.sampled_from(LOCALHOST_NAMES),
    st.lists(label, min_size=1, max_size=3).map(lambda labels: ".".join([*labels, "localhost"])),
)
dns_names = st.builds(
    lambda labels, tld: ".".join([*labels, tld]),
    st.lists(label, min_size=1, max_size=3),
    st.text(string.ascii_lowercase, min_size=2, max_size=6),
).filter(lambda name: not name.endswith("localhost") and name not in LOCALHOST_NAMES)

# ---------------------------------------------------------- disguises

FULLWIDTH = {char: chr(ord(char) - 0x20 + 0xFF00) for char in string.ascii_letters + string.digits}
DOTS = [".", "\u3002", "\uff0e", "\uff61"]
INVISIBLE = ["\u00ad", "\u200b", "\u2060", "\ufeff", "\u180b", "\ufe0f"]


@st.composite
def disguised(draw: st.DrawFn, host: str) -> str:
    """`host` respelled so that a WHATWG/IDNA parser still reads the same host."""
    out = []
    for char in host:
        if char in FULLWIDTH and draw(st.booleans()):
            char = FULLWIDTH[char]
        elif char == ".":
            char = draw(st.sampled_from(DOTS))
        elif char.isalpha() and draw(st.booleans()):
            char = char.upper()
        if draw(st.integers(0, 5)) == 0:
            char += draw(st.sampled_from(INVISIBLE))
        if draw(st.integers(0, 4)) == 0:
            char = "".join(f"%{byte:02X}" for byte in char.encode())
        out.append(char)
    return "".join(out) + "." * draw(st.integers(0, 2))


@st.composite
def in_url(draw: st.DrawFn, host: str) -> str:
    """`host` placed in an https URL the way parsers still find it."""
    scheme = draw(st.sampled_from(["https", "HTTPS", "hTTpS"]))
    userinfo = draw(st.sampled_from(["", "user@", "user:pw@", "a@b@"]))
    port = draw(st.sampled_from(["", ":443", ":8443"]))
    path = draw(st.sampled_from(["/hook", "", "/a?b=1", "/x#y"]))
    # A backslash ends the authority for WHATWG; urllib reads a host after the @.
    trick = draw(st.sampled_from(["", "\\@hooks.example.com", "\\@8.8.8.8"]))
    url = f"{scheme}://{userinfo}{host}{port}{trick}{path}"
    if draw(st.booleans()):
        # Tabs and newlines are removed anywhere; C0 and spaces around the URL.
        at = draw(st.integers(len(scheme) + 3, len(url)))
        url = url[:at] + draw(st.sampled_from(["\t", "\n", "\r\n"])) + url[at:]
    return draw(st.sampled_from(["", " ", "\x00", "\x1f "])) + url


def refused(host_strategy: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return host_strategy.flatmap(disguised).flatmap(in_url)


# -------------------------------------------------------------- checks


def assert_host_refused(url: str) -> None:
    problems = callback_url_problems(url)
    assert any(problem.startswith("host ") and RULE in problem for problem in problems), (
        url,
        problems,
    )
    with pytest.raises(ValidationError) as info:
        Wan25ImageToVideo(
            prompt="a cat", image_urls=["https://cdn.example.com/a.png"], callback_url=url
        )
    [problem] = [p for p in info.value.problems if p.field == "callback_url"]
    assert problem.value == url
    assert problem.rule.startswith("host ") and RULE in problem.rule


def assert_host_accepted(url: str) -> None:
    assert not [p for p in callback_url_problems(url) if p.startswith("host ")], url


EXAMPLES = settings(max_examples=300, deadline=None)

CLASSES: list[tuple[str, st.SearchStrategy[str], Callable[[str], None]]] = [
    ("non-public IPv4, any spelling", refused(v4_spellings(non_public_v4)), assert_host_refused),
    (
        "non-public IPv4 inside IPv6",
        non_public_v4.flatmap(embedded_v6).map(lambda text: f"[{text}]").flatmap(in_url),
        assert_host_refused,
    ),
    (
        "non-public IPv6",
        v6_in(NOT_PUBLIC_V6).map(lambda ip: f"[{ip}]").flatmap(in_url),
        assert_host_refused,
    ),
    (
        "IPv6 outside global unicast",
        st.integers(0, 2**128 - 1)
        .map(IPv6)
        .filter(lambda ip: ip not in GLOBAL_UNICAST_V6)
        # Mapped and NAT64 addresses are judged by the IPv4 address inside.
        .filter(lambda ip: ip.ipv4_mapped is None and ip not in NAT64)
        .map(lambda ip: f"[{ip}]")
        .flatmap(in_url),
        assert_host_refused,
    ),
    ("localhost names", refused(localhost_names), assert_host_refused),
    ("public IPv4, any spelling", refused(v4_spellings(public_v4)), assert_host_accepted),
    (
        "public IPv4 inside IPv6 (mapped, NAT64, 6to4)",
        public_v4.flatmap(lambda ip: embedded_v6(ip, REACHING))
        .map(lambda text: f"[{text}]")
        .flatmap(in_url),
        assert_host_accepted,
    ),
    ("public IPv6", public_v6.map(lambda ip: f"https://[{ip}]/hook"), assert_host_accepted),
    ("DNS names", refused(dns_names), assert_host_accepted),
]


@pytest.mark.parametrize(
    ("strategy", "check"), [case[1:] for case in CLASSES], ids=[case[0] for case in CLASSES]
)
@EXAMPLES
@given(data=st.data())
def test_callback_hosts_are_judged_as_parsers_read_them(
    strategy: st.SearchStrategy[str], check: Callable[[str], None], data: st.DataObject
) -> None:
    check(data.draw(strategy, label="url"))


@settings(max_examples=500, deadline=None)
@given(spelling=v4_spellings(st.integers(0, 2**32 - 1).map(IPv4)))
def test_whatwg_ipv4_reads_what_inet_aton_reads(spelling: str) -> None:
    """The BSD/glibc resolver reads the same legacy IPv4 forms as the WHATWG parser."""
    assert whatwg_ipv4(spelling) == IPv4(socket.inet_aton(spelling))
    assert whatwg_ipv4(spelling + ".") == whatwg_ipv4(spelling)


@pytest.mark.parametrize(
    "host",
    ["1.2.3.4.5", "256.1.1.1", "1.256.1.1", "1.2.16777216", "4294967296", "0x1g", "1..2.3", "08"],
)
def test_numbers_no_parser_reads_as_ipv4_are_not_addresses(host: str) -> None:
    assert whatwg_ipv4(host) is None


@settings(max_examples=200, deadline=None)
@given(
    ip=st.sampled_from(["100.64.0.0/10", "224.0.0.0/4"]).flatmap(
        lambda net: addresses_in([ipaddress.IPv4Network(net)])
    )
)
def test_the_mock_refuses_shared_and_multicast_callbacks_too(ip: IPv4) -> None:
    """The two rule copies agree on the ranges the mock's reading had missed."""
    url = f"https://{ip}/hook"
    body = {
        "model": "wan2.5-image-to-video",
        "prompt": "a cat",
        "image_urls": ["https://cdn.example.com/a.png"],
        "callback_url": url,
    }
    violation = check_create(body)
    assert violation is not None and violation.param == "callback_url"
    assert_host_refused(url)


@pytest.mark.parametrize("scheme", ["http", "HTTP", "ftp", "wss", "javascript"])
def test_only_https_is_a_callback_scheme(scheme: str) -> None:
    problems = callback_url_problems(f"{scheme}://hooks.example.com/hook")
    assert problems and not any(problem.startswith("host ") for problem in problems)


@pytest.mark.parametrize(("length", "ok"), [(2048, True), (2049, False), (10_000, False)])
def test_callback_url_length_limit(length: int, ok: bool) -> None:
    prefix = "https://hooks.example.com/"
    url = prefix + "a" * (length - len(prefix))
    assert (not callback_url_problems(url)) is ok
