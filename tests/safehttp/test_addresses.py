"""Table tests of IP-literal parsing and of the blocked address ranges."""

from __future__ import annotations

import ipaddress

import pytest

from safehttp.addresses import InvalidIPLiteral, address_block_reason, parse_ip_literal

ip = ipaddress.ip_address


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("10.1.258", "10.1.1.2"),
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0X7F000001", "127.0.0.1"),
        ("0x7f.0.0.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0177.1", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("0", "0.0.0.0"),
        ("0x", "0.0.0.0"),
        ("127.0.0.1.", "127.0.0.1"),
        ("169.254.169.254", "169.254.169.254"),
        ("0xa9.0xfe.0xa9.0xfe", "169.254.169.254"),
        ("2852039166", "169.254.169.254"),
        ("8.8.8.8", "8.8.8.8"),
        ("255.255.255.255", "255.255.255.255"),
        ("4294967295", "255.255.255.255"),
        ("::1", "::1"),
        ("[::1]", "::1"),
        ("[::ffff:127.0.0.1]", "::ffff:7f00:1"),
        ("::ffff:7f00:1", "::ffff:7f00:1"),
        ("[2606:4700::1]", "2606:4700::1"),
        ("[FE80::1]", "fe80::1"),
    ],
)
def test_parse_ip_literal_reads_every_spelling(host: str, expected: str) -> None:
    assert parse_ip_literal(host) == ip(expected)


@pytest.mark.parametrize(
    "host",
    [
        "example.com",
        "shop.example",
        "localhost",
        "1.2.3.example",
        "0x7f.example",
        "a1",
        "127.0.0.1.nip.io",
        "xn--nxasmq6b.example",
        "",
    ],
)
def test_parse_ip_literal_leaves_host_names_alone(host: str) -> None:
    assert parse_ip_literal(host) is None


@pytest.mark.parametrize(
    "host",
    [
        "1.2.3.4.5",  # five parts
        "1.2.3.256",  # last part too big for its byte
        "256.1.1.1",
        "1.2.65536",  # too big for the two bytes it fills
        "4294967296",  # 2**32
        "08.0.0.1",  # octal with a non-octal digit
        "0x7g.1",  # ends in a number, so it must be an address, and this one is invalid
        "foo.1",
        "127..1",
        "0xfoo.1",
        "[fe80::1%eth0]",
        "fe80::1%25eth0",
        "[::1",
        "[127.0.0.1]",
        "[1:2:3]",
        "::1::2",
    ],
)
def test_parse_ip_literal_refuses_malformed_literals(host: str) -> None:
    with pytest.raises(InvalidIPLiteral):
        parse_ip_literal(host)


BLOCKED = [
    # IPv4
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("10.0.0.5", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.168.1.1", "private"),
    ("169.254.0.1", "link-local"),
    ("169.254.169.254", "cloud metadata"),
    ("100.100.100.200", "cloud metadata"),
    ("168.63.129.16", "cloud platform"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("100.127.255.255", "carrier-grade NAT"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "unspecified"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "broadcast"),
    ("198.18.0.1", "benchmarking"),
    ("198.19.255.255", "benchmarking"),
    ("192.0.2.1", "documentation"),
    ("198.51.100.7", "documentation"),
    ("203.0.113.9", "documentation"),
    ("192.0.0.8", "reserved"),
    ("192.88.99.1", "reserved"),
    # IPv6
    ("::", "unspecified"),
    ("::1", "loopback"),
    ("fe80::1", "link-local"),
    ("febf::1", "link-local"),
    ("fd00:ec2::254", "cloud metadata"),
    ("fc00::1", "unique-local"),
    ("fd12:3456::1", "unique-local"),
    ("fec0::1", "site-local"),
    ("ff02::1", "multicast"),
    ("2001:db8::1", "documentation"),
    ("3fff::1", "documentation"),
    ("2001:2::1", "benchmarking"),
    ("100::1", "discard-only"),
    ("64:ff9b:1::1", "local NAT64"),
    # IPv6 carrying an internal IPv4 address
    ("::ffff:127.0.0.1", "IPv4-mapped address of 127.0.0.1, which is a loopback"),
    ("::ffff:169.254.169.254", "IPv4-mapped address of 169.254.169.254, which is the cloud"),
    ("::ffff:10.0.0.1", "IPv4-mapped address of 10.0.0.1, which is a private"),
    ("::127.0.0.1", "IPv4-compatible address of 127.0.0.1"),
    ("::10.0.0.1", "IPv4-compatible address of 10.0.0.1"),
    ("::ffff:0:127.0.0.1", "IPv4-translated address of 127.0.0.1"),
    ("64:ff9b::a00:1", "NAT64 address of 10.0.0.1, which is a private"),
    ("64:ff9b::169.254.169.254", "NAT64 address of 169.254.169.254"),
    ("2002:7f00:1::", "6to4 address of 127.0.0.1, which is a loopback"),
    ("2002:a9fe:a9fe::1", "6to4 address of 169.254.169.254"),
    # Teredo: server 65.54.227.120, client 127.0.0.1 (stored inverted as 80ff:fffe).
    ("2001:0:4136:e378:8000:63bf:80ff:fffe", "Teredo address of 127.0.0.1"),
    # Teredo with a private server address and a public client 8.8.8.8.
    ("2001:0:a00:1:8000:63bf:f7f7:f7f7", "Teredo address of 10.0.0.1"),
]


@pytest.mark.parametrize(("address", "reason_part"), BLOCKED)
def test_blocked_addresses_give_a_reason(address: str, reason_part: str) -> None:
    reason = address_block_reason(ip(address))
    assert reason is not None
    assert reason_part in reason


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "1.1.1.1",
        "93.184.216.34",
        "172.15.255.255",  # just below 172.16/12
        "172.32.0.0",  # just above it
        "100.63.255.255",  # just below 100.64/10
        "100.128.0.0",  # just above it
        "169.253.255.255",
        "198.17.255.255",
        "198.20.0.0",
        "223.255.255.255",
        "2606:4700::1",
        "2a00:1450:4001::200e",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",  # NAT64 of 8.8.8.8
        "2002:808:808::1",  # 6to4 of 8.8.8.8
        "2001:0:4136:e378:8000:63bf:f7f7:f7f7",  # Teredo, public server and client 8.8.8.8
    ],
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert address_block_reason(ip(address)) is None


def test_scoped_ipv6_address_is_blocked() -> None:
    reason = address_block_reason(ipaddress.IPv6Address("2606:4700::1%eth0"))
    assert reason is not None and "scoped" in reason


@pytest.mark.parametrize(
    "host",
    ["127.1", "2130706433", "0x7f.1", "0177.0.0.1", "0x7f000001", "[::1]", "[::ffff:127.0.0.1]"],
)
def test_loopback_spellings_parse_to_a_blocked_loopback(host: str) -> None:
    parsed = parse_ip_literal(host)
    assert parsed is not None
    assert "loopback" in (address_block_reason(parsed) or "")
