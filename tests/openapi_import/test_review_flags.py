"""Review flags computed from a spec without any network access (issue 13 item 16)."""

from __future__ import annotations

import pytest

from openapi_import.selectors import server_address_warning


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://10.0.0.1/api", "10.0.0.1 is a private address"),
        ("https://192.168.1.20:8443/", "192.168.1.20 is a private address"),
        ("http://127.1/", "127.1 is a loopback address"),
        ("http://0x7f.1/", "0x7f.1 is a loopback address"),
        ("http://[::1]/", "::1 is a loopback address"),
        ("http://169.254.169.254/latest", "169.254.169.254 is the cloud metadata address"),
        ("http://localhost:8000/", "localhost is a private (local network) host name"),
        ("http://api.internal/v1", "api.internal is a private (local network) host name"),
        ("http://orders/", "orders is a private (local network) host name"),
        ("http://1.2.3.456/", "1.2.3.456 is not a valid address"),
    ],
)
def test_private_servers_are_flagged(url: str, reason: str) -> None:
    """SECURITY-TESTS row 17 (review side): spelled like row 10's block list."""
    assert server_address_warning(url) == reason


@pytest.mark.parametrize(
    "url", ["https://api.example.com/v1", "https://8.8.8.8/", "/api/v3", "", "http://{host}/v1"]
)
def test_public_relative_and_templated_servers_are_not_flagged(url: str) -> None:
    assert server_address_warning(url) is None
