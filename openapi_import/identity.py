"""Identity-bound parameters (docs/identity.md): which parameters of an operation are filled
from the verified customer rather than by the model. Pure logic, no ORM.

A binding maps a parameter property (``email``) or an extra header (``header:X-Customer-Id``)
to a claim of the conversation's verified identity: ``customer.id``, ``customer.email`` or
``customer.name``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

CLAIMS = ("customer.id", "customer.email", "customer.name")
HEADER_PREFIX = "header:"
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$")
# Never bound (they carry credentials or routing): a binding could otherwise smuggle them.
_FORBIDDEN_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization", "host"})

# Parameter names (lower-cased, without separators: ``customer_id``, ``customerId`` and
# ``Customer-ID`` are all ``customerid``) the importer suggests binding, and to what.
_SUGGESTED: dict[str, str] = {
    "email": "customer.email",
    "emailaddress": "customer.email",
    "customeremail": "customer.email",
    "useremail": "customer.email",
    "accountemail": "customer.email",
    "customerid": "customer.id",
    "userid": "customer.id",
    "accountid": "customer.id",
}
_LOCATIONS = frozenset({"path", "query", "header", "cookie"})


def squash(name: str) -> str:
    squashed = re.sub(r"[^a-z0-9]", "", name.lower())
    # Vendor headers: X-Customer-Email is the customer's email.
    return squashed[1:] if squashed.startswith("x") and squashed[1:] in _SUGGESTED else squashed


def suggest_bindings(
    parameter_locations: Mapping[str, str], parameter_names: Mapping[str, str]
) -> dict[str, str]:
    """Bindings for parameters named like the customer's email or id (not body fields: a body
    is the customer's content, bound only by an explicit choice)."""
    suggested: dict[str, str] = {}
    for prop, location in parameter_locations.items():
        if location not in _LOCATIONS:
            continue
        claim = _SUGGESTED.get(squash(str(parameter_names.get(prop, prop))))
        if claim is not None:
            suggested[prop] = claim
    return suggested


def bindings_clean(value: Any, *, properties: Mapping[str, str]) -> dict[str, str]:
    """The bindings as stored, or ``ValueError`` saying what is wrong. ``properties`` are the
    operation's parameter locations (property -> where it goes)."""
    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        raise ValueError(
            'Identity bindings must be a JSON object, e.g. {"email": "customer.email"}.'
        )
    cleaned: dict[str, str] = {}
    for key, claim in value.items():
        if not isinstance(key, str) or not key:
            raise ValueError("Each binding needs a parameter name.")
        if claim not in CLAIMS:
            raise ValueError(f"{key}: unknown claim {claim!r}; use one of {', '.join(CLAIMS)}.")
        if key.startswith(HEADER_PREFIX):
            header = key[len(HEADER_PREFIX) :]
            if not _HEADER_NAME.match(header) or header.lower() in _FORBIDDEN_HEADERS:
                raise ValueError(f"{key}: not a header that can carry the customer's identity.")
        elif key not in properties:
            known = ", ".join(sorted(properties)) or "none"
            raise ValueError(
                f"{key}: the operation has no such parameter (parameters: {known}; "
                'or bind an extra header as "header:<Name>").'
            )
        elif properties[key] in ("body", "formData"):
            raise ValueError(f"{key}: the request body cannot be bound as a whole.")
        cleaned[key] = str(claim)
    return cleaned


def bound_properties(bindings: Mapping[str, Any]) -> set[str]:
    """The bound parameter properties (not the extra headers)."""
    return {k for k in bindings if isinstance(k, str) and not k.startswith(HEADER_PREFIX)}


def bound_headers(bindings: Mapping[str, Any]) -> dict[str, str]:
    """Extra header name -> claim."""
    return {
        k[len(HEADER_PREFIX) :]: str(v)
        for k, v in bindings.items()
        if isinstance(k, str) and k.startswith(HEADER_PREFIX)
    }
