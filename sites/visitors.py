"""The widget's visitor token: which anonymous visitor a widget frame speaks for.

A cookie of ours inside a business's page is a third-party cookie, which current browsers
block, so the widget frame keeps this signed token in its own (partitioned) ``localStorage``
instead and presents it: in the JSON body of the widget's requests and, for the chat socket,
as a WebSocket subprotocol (``actiondesk.visitor.<token>``), which keeps it out of URLs and
access logs. A token is signed per site: one site's token opens nothing on another."""

from __future__ import annotations

from typing import Any

from django.core import signing

from sites.models import Site

MAX_AGE = 60 * 60 * 24 * 90
SUBPROTOCOL = "actiondesk"
TOKEN_SUBPROTOCOL_PREFIX = "actiondesk.visitor."  # noqa: S105 (a prefix, not a secret)
MAX_TOKEN_CHARS = 300


def _signer(site: Site) -> signing.TimestampSigner:
    # "." as the separator keeps the token within the characters a subprotocol may hold.
    return signing.TimestampSigner(salt=f"actiondesk.widget-visitor.{site.public_id}", sep=".")


def visitor_token_sign(*, site: Site, visitor_id: str) -> str:
    return _signer(site).sign(visitor_id)


def visitor_token_read(*, site: Site, token: Any) -> str | None:
    """The visitor id the token carries for this site; ``None`` for a forged, expired or
    other site's token."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
        return None
    try:
        return str(_signer(site).unsign(token, max_age=MAX_AGE))
    except signing.BadSignature:
        return None


def token_from_subprotocols(scope: dict[str, Any]) -> str | None:
    for protocol in scope.get("subprotocols") or []:
        if isinstance(protocol, str) and protocol.startswith(TOKEN_SUBPROTOCOL_PREFIX):
            return protocol.removeprefix(TOKEN_SUBPROTOCOL_PREFIX)
    return None
