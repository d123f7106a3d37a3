"""A business's own website for the widget tests: plain pages on other origins (other ports on
127.0.0.1, reached as ``localhost`` too) with the script tag and a strict policy of their own."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOST_PAGE = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Ana's Shop</title></head>
<body>
<main><h1>Ana's Shop</h1><p>Handmade things.</p></main>
<script src="{server}/widget.js" data-site="{site}"{identity} async></script>
</body>
</html>
"""


def host_policy(server: str) -> str:
    """The business's own strict policy: our script and frame, nothing inline, no eval."""
    return (
        f"default-src 'none'; script-src {server}; frame-src {server}; style-src 'self'; "
        "img-src 'self'; base-uri 'none'; object-src 'none'; form-action 'none'"
    )


@dataclass
class HostPage:
    """What the page holds, read at each request (the site exists once the port is known)."""

    server: str
    site: str = ""
    # Signs a fresh identity per request, as the business's server does for a signed-in customer.
    identity: Callable[[], str] | None = None


@contextmanager
def host_site(config: HostPage) -> Iterator[int]:
    """Serves the host page on a free port of 127.0.0.1 until the block ends."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/":
                self.send_error(404)
                return
            token = config.identity() if config.identity is not None else ""
            attribute = f' data-identity="{token}"' if token else ""
            body = HOST_PAGE.format(server=config.server, site=config.site, identity=attribute)
            data = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Security-Policy", host_policy(config.server))
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(httpd.server_address[1])
    finally:
        httpd.shutdown()
        httpd.server_close()
