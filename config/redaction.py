"""Secrets out of logs (SPEC §12, SECURITY-TESTS row 25): API keys, bearer tokens, cookies and
credential-like query values are replaced by ``[redacted]`` wherever they appear in a log line:
a field named like a secret, a URL's query string, an ``Authorization``/``Cookie`` header in
text, django-ninja's "Unexpected auth" line, or a value shaped like one of our keys. Pure
functions; :func:`config.logging.redact_secrets` applies them to every line."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

REDACTED = "[redacted]"

# Log fields (and dict keys inside them) that hold a secret, compared lower-case with "-" as "_".
SECRET_FIELDS = frozenset(
    {
        "authorization",
        "proxy_authorization",
        "http_authorization",
        "cookie",
        "cookies",
        "http_cookie",
        "set_cookie",
        "api_key",
        "apikey",
        "x_api_key",
        "http_x_api_key",
        "auth_value",
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "password",
        "passwd",
        "secret",
        "client_secret",
        "sessionid",
        "csrftoken",
        "plaintext",
    }
)

# Query parameters whose value is a credential: key, api_key, apiKey, access_token, token, ...
_SECRET_QUERY_NAME = re.compile(
    r"(?:^|[_.-])(?:api_?key|key|token|access_?token|auth|authorization|password|passwd|pwd"
    r"|secret|signature|sig|session|sessionid|csrf\w*|code|jwt|bearer|credentials?)$",
    re.IGNORECASE,
)
_QUERY_PAIR = re.compile(r"(?P<lead>[?&;](?P<name>[^=&;?\s\"'#]+)=)(?P<value>[^&;\s\"'#]*)")
# "Bearer" in any case; the other schemes capitalised and with a credential-sized value, so that
# prose ("token budget", "basic plan") stays as it is.
_SCHEME_CREDENTIAL = re.compile(
    r"\b(?P<scheme>[Bb][Ee][Aa][Rr][Ee][Rr])\s+[^\s\"',;]+"
    r"|\b(?P<other>Basic|Digest|Token)\s+[A-Za-z0-9._~+/=-]{8,}"
)
_HEADER = re.compile(
    r"(?P<lead>[\"']?\b(?:proxy-)?(?:authorization|cookie|set-cookie|x-api-key|api-key)\b[\"']?"
    r"\s*[:=]\s*)(?P<value>\"[^\"]*\"|'[^']*'|[^\r\n,}]+)",
    re.IGNORECASE,
)
_UNEXPECTED_AUTH = re.compile(r"(Unexpected auth - ')(.*)(')", re.DOTALL)
# Our API keys (access.services: ad_<12 hex>_<token>) and common provider key shapes.
_KEY_SHAPES = re.compile(
    r"\bad_[0-9a-f]{6,}_[A-Za-z0-9_-]{8,}|\bsk-[A-Za-z0-9_-]{16,}|\bgh[pousr]_[A-Za-z0-9]{20,}"
)


def is_secret_field(name: str) -> bool:
    return name.lower().replace("-", "_") in SECRET_FIELDS


def is_secret_query_name(name: str) -> bool:
    return bool(_SECRET_QUERY_NAME.search(unquote(name)))


def _query_value(match: re.Match[str]) -> str:
    if match.group("value") and is_secret_query_name(match.group("name")):
        return match.group("lead") + REDACTED
    return match.group(0)


def redact_text(text: str) -> str:
    """``text`` with every credential it carries replaced by ``[redacted]``."""
    if not text:
        return text
    text = _UNEXPECTED_AUTH.sub(lambda m: m.group(1) + REDACTED + m.group(3), text)
    text = _HEADER.sub(lambda m: m.group("lead") + REDACTED, text)
    text = _SCHEME_CREDENTIAL.sub(
        lambda m: f"{m.group('scheme') or m.group('other')} {REDACTED}", text
    )
    text = _QUERY_PAIR.sub(_query_value, text)
    return _KEY_SHAPES.sub(REDACTED, text)


def redact(value: Any) -> Any:
    """Redact every string inside ``value``; dict entries named like a secret lose their value."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {
            k: (REDACTED if isinstance(k, str) and is_secret_field(k) and v else redact(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value
