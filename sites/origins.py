"""Web origins (``scheme://host[:port]``): parsing what a supervisor types and what a browser
sends. Pure logic, no ORM."""

from __future__ import annotations

from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_normalise(value: str) -> str | None:
    """The origin in its canonical form (lower case, default port dropped), or ``None`` when
    the value is not a bare http(s) origin (a path, query, credentials or wildcard)."""
    text = value.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc:
        return None
    if "*" in text:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == DEFAULT_PORTS[parts.scheme]:
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"


def origins_parse(text: str) -> tuple[list[str], list[str]]:
    """The origins of a one-per-line (or comma separated) list, and the entries refused."""
    good: list[str] = []
    bad: list[str] = []
    for entry in text.replace(",", "\n").splitlines():
        if not entry.strip():
            continue
        origin = origin_normalise(entry)
        if origin is None:
            bad.append(entry.strip())
        elif origin not in good:
            good.append(origin)
    return good, bad
