"""SSRF-safe outbound HTTP for fetching user-supplied URLs (OpenAPI specs, upstream APIs).

Plain Python, no Django: callers build a ``Policy`` from their settings and pass it in.
``addresses`` owns which IPs are reachable, ``client`` owns the fetch; see docs/safehttp.md.
"""

from __future__ import annotations

from .addresses import address_block_reason, parse_ip_literal
from .client import (
    BlockedDestination,
    DeadlineExceeded,
    Policy,
    Resolver,
    SafeHttpError,
    SafeResponse,
    TooLarge,
    TooManyRedirects,
    UpstreamError,
    async_safe_request,
    safe_get,
    safe_request,
    system_resolver,
)

__all__ = [
    "BlockedDestination",
    "DeadlineExceeded",
    "Policy",
    "Resolver",
    "SafeHttpError",
    "SafeResponse",
    "TooLarge",
    "TooManyRedirects",
    "UpstreamError",
    "address_block_reason",
    "async_safe_request",
    "parse_ip_literal",
    "safe_get",
    "safe_request",
    "system_resolver",
]
