"""Pure checks on host settings, shared by the production settings (which refuse to load) and the
system checks (which refuse to start): no Django imports, so settings modules can use them."""

from __future__ import annotations

import re

# What X-Request-ID may be when it is taken from a client: short, and nothing a log line or a
# header could be forged with.
REQUEST_ID = re.compile(r"[A-Za-z0-9-]{1,64}")


def wildcard_entries(values: list[str]) -> list[str]:
    """Entries that admit every host: ``*`` in ``ALLOWED_HOSTS``, or an origin whose host is
    ``*`` (``https://*``) in ``CSRF_TRUSTED_ORIGINS``. ``.example.com`` and
    ``https://*.example.com`` name one domain's subdomains and are fine."""
    found = []
    for value in values:
        host = value.split("://", 1)[-1].split("/", 1)[0]
        if host.rsplit(":", 1)[0] == "*" or host == "*":
            found.append(value)
    return found


def request_id_is_well_formed(value: str | None) -> bool:
    return value is not None and REQUEST_ID.fullmatch(value) is not None
