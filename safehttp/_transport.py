"""The default synchronous transport: httpcore with every socket operation bounded by a deadline.

httpx's timeouts are per operation (each read may take the full read timeout), so a server
that sends a byte just before every timeout keeps a worker far past the fetch deadline. This
transport wraps httpcore's network backend so that each connect, read and write gets
``min(its timeout, time left)``. It never reads proxy settings from the environment: a proxy
would resolve names itself and undo the address pinning.
"""

from __future__ import annotations

import functools
import ssl
import time
from collections.abc import Iterable, Iterator

import httpcore
import httpx

__all__ = ["DeadlineTransport", "ssl_context"]


@functools.cache
def ssl_context() -> ssl.SSLContext:
    """The verifying TLS context (certifi roots, as httpx uses), built once per process."""
    return httpx.create_ssl_context()


def _bounded(timeout: float | None, deadline: float, exc: type[Exception]) -> float:
    left = deadline - time.monotonic()
    # Raise the timeout httpcore itself would raise, so callers map one family of errors.
    if left <= 0:
        raise exc("the fetch deadline has passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream, deadline: float) -> None:
        self._inner = inner
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _bounded(timeout, self._deadline, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _bounded(timeout, self._deadline, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        # A stalling TLS handshake is bounded like any read; the wrapped stream stays bounded.
        bounded = _bounded(timeout, self._deadline, httpcore.ConnectTimeout)
        inner = self._inner.start_tls(ssl_context, server_hostname, bounded)
        return _DeadlineStream(inner, self._deadline)

    def get_extra_info(self, info: str) -> object:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self, deadline: float) -> None:
        self._inner = httpcore.SyncBackend()
        self._deadline = deadline

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        bounded = _bounded(timeout, self._deadline, httpcore.ConnectTimeout)
        stream = self._inner.connect_tcp(host, port, bounded, local_address, socket_options)
        return _DeadlineStream(stream, self._deadline)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        # Only reachable through a uds= option we never set; refuse rather than trust that.
        raise httpcore.ConnectError("unix sockets are not allowed")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class _CoreStream(httpx.SyncByteStream):
    def __init__(self, inner: Iterable[bytes]) -> None:
        self._inner = inner

    def __iter__(self) -> Iterator[bytes]:
        yield from self._inner

    def close(self) -> None:
        close = getattr(self._inner, "close", None)
        if close is not None:
            close()


class DeadlineTransport(httpx.BaseTransport):
    """One-use transport for one hop. Raises httpcore exceptions; the caller maps them."""

    def __init__(self, deadline: float) -> None:
        # retries=0: a retried connect would be a second attempt the caller did not budget for.
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context(),
            retries=0,
            network_backend=_DeadlineBackend(deadline),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.SyncByteStream)
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        core_response = self._pool.handle_request(core_request)
        assert isinstance(core_response.stream, Iterable)
        return httpx.Response(
            status_code=core_response.status,
            headers=core_response.headers,
            stream=_CoreStream(core_response.stream),
            extensions=core_response.extensions,
        )

    def close(self) -> None:
        self._pool.close()
