"""Reading a response body under a byte cap and a deadline, decoding gzip/deflate ourselves.

httpx's own decoders inflate each network chunk in one call with no output limit, and stack
decoders for ``Content-Encoding: gzip, gzip``; a 64 KiB chunk of a gzip bomb becomes ~64 MiB
before any cap can look at it, and stacked layers multiply that. So this module reads the raw
stream and inflates with ``max_length``, counting decoded bytes piece by piece.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterator

from .errors import DeadlineExceeded, TooLarge, UpstreamError

__all__ = ["BodyReader", "deadline_message", "format_size"]

# Upper bound of one decoded piece: memory in use is at most max_bytes plus this.
_PIECE = 64 * 1024


def format_size(size: int) -> str:
    if size >= 1024 * 1024 and size % (1024 * 1024) == 0:
        return f"{size // (1024 * 1024)} MB"
    if size >= 1024 and size % 1024 == 0:
        return f"{size // 1024} KB"
    return f"{size} bytes"


def deadline_message(host: str, timeout: float) -> str:
    return f"fetch stopped: {host} took longer than the {timeout:g} s limit"


class _Identity:
    def decode(self, data: bytes) -> Iterator[bytes]:
        yield data

    def flush(self) -> Iterator[bytes]:
        yield from ()


def _looks_like_zlib(data: bytes) -> bool:
    return data[0] & 0x0F == 8 and ((data[0] << 8) | data[1]) % 31 == 0


class _Inflate:
    """gzip, or "deflate" in both the zlib-wrapped (RFC) and raw (common in practice) forms."""

    def __init__(self, gzip: bool) -> None:
        self._pending = b""
        self._inflater = zlib.decompressobj(zlib.MAX_WBITS | 16) if gzip else None

    def decode(self, data: bytes) -> Iterator[bytes]:
        if self._inflater is None:
            # Two bytes tell zlib-wrapped deflate from raw deflate.
            self._pending += data
            if len(self._pending) < 2:
                return
            raw = not _looks_like_zlib(self._pending)
            self._inflater = zlib.decompressobj(-zlib.MAX_WBITS if raw else zlib.MAX_WBITS)
            data, self._pending = self._pending, b""
        yield from self._drain(data)

    def _drain(self, data: bytes) -> Iterator[bytes]:
        assert self._inflater is not None
        try:
            while True:
                out = self._inflater.decompress(data, _PIECE)
                if out:
                    yield out
                data = self._inflater.unconsumed_tail
                # A full piece may mean more output is pending even with no input left.
                if not data and len(out) < _PIECE:
                    return
        except zlib.error:
            raise UpstreamError(
                "fetch failed: the response body is not valid compressed data"
            ) from None

    def flush(self) -> Iterator[bytes]:
        if self._inflater is not None:
            yield from self._drain(b"")


class BodyReader:
    """Accumulates one response body; raises as soon as a limit is passed."""

    def __init__(
        self, content_encoding: str, *, max_bytes: int, deadline: float, timeout: float, host: str
    ) -> None:
        self._decoder = _decoder_for(content_encoding)
        self._max_bytes = max_bytes
        self._deadline = deadline
        self._timeout = timeout
        self._host = host
        self._raw = 0
        self._size = 0
        self._parts: list[bytes] = []

    def feed(self, chunk: bytes) -> None:
        # The compressed size is capped too: a stream of empty deflate blocks decodes to
        # nothing and would otherwise only be stopped by the deadline.
        self._raw += len(chunk)
        if self._raw > self._max_bytes:
            self._too_large()
        for piece in self._decoder.decode(chunk):
            self._add(piece)
        self.check_deadline()

    def finish(self) -> bytes:
        for piece in self._decoder.flush():
            self._add(piece)
        return b"".join(self._parts)

    def check_deadline(self) -> None:
        if time.monotonic() > self._deadline:
            raise DeadlineExceeded(deadline_message(self._host, self._timeout))

    def _add(self, piece: bytes) -> None:
        self._size += len(piece)
        if self._size > self._max_bytes:
            self._too_large()
        self._parts.append(piece)

    def _too_large(self) -> None:
        raise TooLarge(
            f"fetch stopped: the response from {self._host} is larger than the "
            f"{format_size(self._max_bytes)} limit"
        )


def _decoder_for(content_encoding: str) -> _Identity | _Inflate:
    codings = [c.strip().lower() for c in content_encoding.split(",")]
    codings = [c for c in codings if c and c != "identity"]
    if not codings:
        return _Identity()
    # We only ever advertise gzip and deflate; anything else (or layers of them) is refused
    # rather than returned undecoded or decoded without a bound.
    if len(codings) == 1 and codings[0] in ("gzip", "x-gzip", "deflate"):
        return _Inflate(gzip=codings[0] != "deflate")
    raise UpstreamError(
        f"fetch failed: unsupported content-encoding {', '.join(codings)!r} in the response"
    )
