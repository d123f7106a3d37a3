"""Which IP addresses an outbound fetch may reach, and how to read IP literals.

This module owns two pure decisions and nothing else (no I/O, no settings):

* ``parse_ip_literal`` turns a URL host into an address when the host is an IP literal in any
  spelling that browsers or libc accept (``127.1``, ``2130706433``, ``0x7f.1``, ``0177.0.0.1``,
  ``[::1]`` ...), so that such hosts are judged as addresses instead of being handed to a
  resolver that would quietly accept them.
* ``address_block_reason`` says why an address must not be reached (loopback, private, cloud
  metadata, ...) or returns None for a public address.
"""

from __future__ import annotations

import ipaddress
import re

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

__all__ = ["IPAddress", "InvalidIPLiteral", "address_block_reason", "parse_ip_literal"]


class InvalidIPLiteral(ValueError):
    """A host that is spelled like an IP address but is not a valid one (or has a zone id)."""


_HEX_PART = re.compile(r"0[xX][0-9a-fA-F]*")
_DEC_PART = re.compile(r"[0-9]+")


def _ends_in_number(parts: list[str]) -> bool:
    # WHATWG URL standard: a host whose last label is numeric is an IPv4 address (or invalid),
    # never a domain name. Resolvers treat it the same way, so we must as well.
    last = parts[-1]
    return bool(_DEC_PART.fullmatch(last) or _HEX_PART.fullmatch(last))


def _parse_ipv4_number(part: str) -> int:
    if _HEX_PART.fullmatch(part):
        digits = part[2:]
        return int(digits, 16) if digits else 0
    if not _DEC_PART.fullmatch(part):
        raise InvalidIPLiteral(f"{part!r} is not a number")
    if len(part) > 1 and part.startswith("0"):
        # A leading zero means octal, as inet_aton() reads it: 0177 is 127.
        if not re.fullmatch(r"[0-7]+", part):
            raise InvalidIPLiteral(f"{part!r} is not an octal number")
        return int(part, 8)
    return int(part, 10)


def _parse_ipv4(host: str) -> ipaddress.IPv4Address | None:
    parts = host.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()  # one trailing dot is allowed: "127.0.0.1." is still an address
    if not _ends_in_number(parts):
        return None
    if len(parts) > 4 or any(p == "" for p in parts):
        raise InvalidIPLiteral(f"{host!r} is not a valid IPv4 address")
    numbers = [_parse_ipv4_number(p) for p in parts]
    # The last number fills all remaining bytes: "127.1" is 127.0.0.1, "10.1.258" is 10.1.1.2.
    *leading, last = numbers
    if any(n > 255 for n in leading) or last >= 256 ** (5 - len(numbers)):
        raise InvalidIPLiteral(f"{host!r} is not a valid IPv4 address")
    value = last
    for index, number in enumerate(leading):
        value += number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def parse_ip_literal(host: str) -> IPAddress | None:
    """Return the address ``host`` denotes when it is an IP literal, else None (a host name).

    Accepts every IPv4 spelling of the WHATWG URL standard and inet_aton(): dotted quads,
    shortened forms (``127.1``), a single integer (``2130706433``), hex and octal parts. IPv6
    literals may be bracketed. Raises ``InvalidIPLiteral`` for a host that is numeric but not a
    valid address (``1.2.3.456``) and for IPv6 literals with a zone id (``fe80::1%eth0``), which
    would select a local interface.
    """
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if ":" not in host:
            raise InvalidIPLiteral(f"[{host}] is not a valid IPv6 address")
    if ":" in host:
        if "%" in host:
            raise InvalidIPLiteral("IPv6 addresses with a zone id are not allowed")
        try:
            return ipaddress.IPv6Address(host)
        except ValueError:
            raise InvalidIPLiteral(f"{host!r} is not a valid IPv6 address") from None
    if not host:
        return None
    return _parse_ipv4(host)


def _v4(net: str) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(net)


def _v6(net: str) -> ipaddress.IPv6Network:
    return ipaddress.IPv6Network(net)


# Ordered most specific first: the first match gives the reason. The ipaddress properties are
# checked afterwards as a safety net, but an explicit table keeps the policy reviewable and
# independent of Python-version changes to is_private / is_global.
_IPV4_BLOCKED: tuple[tuple[ipaddress.IPv4Network, str], ...] = (
    (_v4("169.254.169.254/32"), "the cloud metadata address"),
    (_v4("100.100.100.200/32"), "the cloud metadata address"),
    (_v4("168.63.129.16/32"), "a cloud platform address"),  # Azure WireServer
    (_v4("255.255.255.255/32"), "the broadcast address"),
    (_v4("0.0.0.0/8"), "an unspecified address"),
    (_v4("10.0.0.0/8"), "a private address"),
    (_v4("100.64.0.0/10"), "a carrier-grade NAT address"),
    (_v4("127.0.0.0/8"), "a loopback address"),
    (_v4("169.254.0.0/16"), "a link-local address"),
    (_v4("172.16.0.0/12"), "a private address"),
    (_v4("192.0.0.0/24"), "a reserved address"),
    (_v4("192.0.2.0/24"), "a documentation address"),
    (_v4("192.88.99.0/24"), "a reserved address"),
    (_v4("192.168.0.0/16"), "a private address"),
    (_v4("198.18.0.0/15"), "a benchmarking address"),
    (_v4("198.51.100.0/24"), "a documentation address"),
    (_v4("203.0.113.0/24"), "a documentation address"),
    (_v4("224.0.0.0/4"), "a multicast address"),
    (_v4("240.0.0.0/4"), "a reserved address"),
)

_IPV6_BLOCKED: tuple[tuple[ipaddress.IPv6Network, str], ...] = (
    (_v6("::/128"), "an unspecified address"),
    (_v6("::1/128"), "a loopback address"),
    (_v6("fd00:ec2::254/128"), "the cloud metadata address"),
    (_v6("64:ff9b:1::/48"), "a local NAT64 address"),
    (_v6("100::/64"), "a discard-only address"),
    (_v6("2001:2::/48"), "a benchmarking address"),
    (_v6("2001:db8::/32"), "a documentation address"),
    (_v6("3fff::/20"), "a documentation address"),
    (_v6("2001::/23"), "a reserved address"),
    (_v6("5f00::/16"), "a reserved address"),
    (_v6("fc00::/7"), "a unique-local address"),
    (_v6("fe80::/10"), "a link-local address"),
    (_v6("fec0::/10"), "a site-local address"),
    (_v6("ff00::/8"), "a multicast address"),
    (_v6("::/8"), "a reserved address"),
)

_IPV4_COMPATIBLE = _v6("::/96")
_IPV4_TRANSLATED = _v6("::ffff:0:0:0/96")
_NAT64 = _v6("64:ff9b::/96")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[tuple[str, ipaddress.IPv4Address]]:
    """IPv4 addresses that an IPv6 address carries, with the name of the form carrying them."""
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.ipv4_mapped is not None:
        return [("an IPv4-mapped address", ip.ipv4_mapped)]
    if ip in _IPV4_TRANSLATED:
        return [("an IPv4-translated address", low32)]
    if ip in _IPV4_COMPATIBLE and int(ip) > 1:  # :: and ::1 are their own cases
        return [("an IPv4-compatible address", low32)]
    if ip in _NAT64:
        return [("a NAT64 address", low32)]
    if ip.sixtofour is not None:
        return [("a 6to4 address", ip.sixtofour)]
    if ip.teredo is not None:
        server, client = ip.teredo
        # Traffic goes through the relay to the client; either one being internal is a leak.
        return [("a Teredo address", client), ("a Teredo address", server)]
    return []


def address_block_reason(ip: IPAddress) -> str | None:
    """Return why ``ip`` must not be fetched from ("a private address"), or None when public.

    The reason reads after the address: f"{ip} is {reason}". IPv6 forms that carry an IPv4
    address (mapped, compatible, translated, NAT64, 6to4, Teredo) are judged by that address.
    """
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return "a scoped (interface-local) address"
        embedded = _embedded_ipv4(ip)
        if embedded:
            for form, inner in embedded:
                inner_reason = address_block_reason(inner)
                if inner_reason is not None:
                    return f"{form} of {inner}, which is {inner_reason}"
            return None
        for net6, reason in _IPV6_BLOCKED:
            if ip in net6:
                return reason
    else:
        for net4, reason in _IPV4_BLOCKED:
            if ip in net4:
                return reason
    # Safety net for anything the tables miss (new IANA special-purpose registrations).
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_unspecified or ip.is_reserved:
        return "a reserved address"
    if ip.is_private or not ip.is_global:
        return "a non-public address"
    return None
