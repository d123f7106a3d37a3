"""The exceptions a safe fetch raises; every message is written to be shown to the user.

Messages name hosts and addresses but never header values or query strings, which may carry
credentials.
"""

from __future__ import annotations

__all__ = [
    "BlockedDestination",
    "DeadlineExceeded",
    "SafeHttpError",
    "TooLarge",
    "TooManyRedirects",
    "UpstreamError",
]


class SafeHttpError(Exception):
    """Base class: the fetch did not produce a response. ``reason`` is the user-facing text."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BlockedDestination(SafeHttpError):
    """The URL, scheme, host or address is not allowed (nothing was sent to it)."""


class TooLarge(SafeHttpError):
    """The response body passed ``Policy.max_bytes`` (after decompression)."""


class DeadlineExceeded(SafeHttpError):
    """The whole fetch, redirects and body included, took longer than ``Policy.timeout``."""


class TooManyRedirects(SafeHttpError):
    """The server redirected more often than ``Policy.max_redirects`` allows."""


class UpstreamError(SafeHttpError):
    """The upstream could not be resolved, reached or understood (DNS, TCP, TLS, HTTP)."""
