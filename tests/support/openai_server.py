"""A scriptable OpenAI-compatible Chat Completions server on 127.0.0.1, for tests and benchmarks.

Real HTTP/1.1 (keep-alive, chunked SSE streams) from a ``ThreadingHTTPServer`` in a background
thread, so the official ``openai`` client talks to it exactly as to a real provider::

    from tests.support.openai_server import OpenAITestServer, error_reply, text_reply

    with OpenAITestServer() as server:
        server.enqueue(error_reply(429, retry_after=2), text_reply("Hello!"))
        client = openai.AsyncOpenAI(base_url=server.url, api_key="x", max_retries=0)
        ...
        assert len(server.chat_requests) == 2
        assert server.chat_requests[-1].json["messages"][-1]["content"] == "hi"

Scripting: each ``POST …/chat/completions`` takes the next queued :class:`Reply`; when the queue is
empty the ``responder`` (a function of the request) or the ``default`` reply answers, and without
either the server answers 400 "no scripted reply", which fails a test loudly. Builders:

- :func:`text_reply` - a plain answer (streamed automatically when the request asks for a stream)
- :func:`tool_calls_reply` with :func:`tool_call` - the model calls tools (also streamable)
- :func:`stream_reply` - a stream with exact text pieces, delays, or a failure after N chunks
  (``failure="disconnect"`` drops the connection, ``"error_event"`` sends an SSE error object)
- :func:`error_reply` - a status code (429, 500, 503, 400, ...) with optional ``Retry-After``
- :func:`raw_reply` - any bytes (invalid JSON and other broken answers)

Every reply takes ``delay`` (seconds before the status line; use it to trigger timeouts);
``text_reply(trickle=...)`` sends the body in slow pieces, which no per-read timeout notices. Every
request is kept as a :class:`ReceivedRequest` (method, path, lowercased headers, body, ``json``).
:func:`unused_url` gives a base URL where nothing listens (connection refused).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

__all__ = [
    "OpenAITestServer",
    "ReceivedRequest",
    "Reply",
    "ToolCallScript",
    "error_reply",
    "raw_reply",
    "stream_reply",
    "text_reply",
    "tool_call",
    "tool_calls_reply",
    "unused_port",
    "unused_url",
]


@dataclass(frozen=True)
class ToolCallScript:
    name: str
    arguments: Mapping[str, Any] | str  # a string is sent verbatim (e.g. invalid JSON)
    id: str = ""

    def arguments_text(self) -> str:
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments)


@dataclass(frozen=True)
class Reply:
    """One scripted answer. Build it with the ``*_reply`` functions rather than by hand."""

    status: int = 200
    text: str | None = None
    tool_calls: tuple[ToolCallScript, ...] = ()
    finish_reason: str | None = None
    prompt_tokens: int = 10
    completion_tokens: int | None = None
    model: str | None = None  # None: echo the requested model
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    # Streaming: None follows the request's "stream" flag; True/False force the shape.
    stream: bool | None = None
    pieces: tuple[str, ...] | None = None  # exact content deltas; default splits ``text``
    chunk_delay: float = 0.0
    fail_after: int | None = None  # stream: fail after this many chunks
    failure: str = "disconnect"  # or "error_event"
    error: Mapping[str, Any] | None = None  # the JSON body of an error reply
    raw: bytes | None = None
    content_type: str = "application/json"
    # Non-stream: send the body in ``trickle_pieces`` parts this many seconds apart, so each read
    # is quick but the whole answer is slow (only a total deadline catches it).
    trickle: float = 0.0
    trickle_pieces: int = 10


def text_reply(
    text: str,
    *,
    prompt_tokens: int = 10,
    completion_tokens: int | None = None,
    model: str | None = None,
    finish_reason: str = "stop",
    delay: float = 0.0,
    trickle: float = 0.0,
) -> Reply:
    return Reply(
        text=text,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        model=model,
        finish_reason=finish_reason,
        delay=delay,
        trickle=trickle,
    )


def tool_call(name: str, arguments: Mapping[str, Any] | str, *, id: str = "") -> ToolCallScript:
    return ToolCallScript(name=name, arguments=arguments, id=id)


def tool_calls_reply(
    *calls: ToolCallScript,
    text: str | None = None,
    prompt_tokens: int = 10,
    completion_tokens: int | None = None,
    model: str | None = None,
    delay: float = 0.0,
) -> Reply:
    return Reply(
        text=text,
        tool_calls=tuple(calls),
        finish_reason="tool_calls",
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        model=model,
        delay=delay,
    )


def stream_reply(
    pieces: Sequence[str] = (),
    *,
    tool_calls: Sequence[ToolCallScript] = (),
    prompt_tokens: int = 10,
    completion_tokens: int | None = None,
    model: str | None = None,
    delay: float = 0.0,
    chunk_delay: float = 0.0,
    fail_after: int | None = None,
    failure: str = "disconnect",
) -> Reply:
    """A streamed answer with these exact content deltas. ``fail_after=n`` sends the role chunk
    and ``n`` content chunks, then fails instead of finishing."""
    if failure not in ("disconnect", "error_event"):
        raise ValueError("failure is 'disconnect' or 'error_event'")
    return Reply(
        text="".join(pieces),
        pieces=tuple(pieces),
        tool_calls=tuple(tool_calls),
        finish_reason="tool_calls" if tool_calls else "stop",
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        model=model,
        delay=delay,
        stream=True,
        chunk_delay=chunk_delay,
        fail_after=fail_after,
        failure=failure,
    )


def error_reply(
    status: int,
    message: str = "",
    *,
    retry_after: float | str | None = None,
    retry_after_ms: float | None = None,
    error_type: str | None = None,
    delay: float = 0.0,
) -> Reply:
    headers: dict[str, str] = {}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    if retry_after_ms is not None:
        headers["retry-after-ms"] = str(retry_after_ms)
    body = {
        "error": {
            "message": message or f"scripted error {status}",
            "type": error_type or ("rate_limit_error" if status == 429 else "server_error"),
            "param": None,
            "code": None,
        }
    }
    return Reply(status=status, error=body, headers=headers, delay=delay, stream=False)


def raw_reply(
    body: bytes,
    *,
    status: int = 200,
    content_type: str = "application/json",
    delay: float = 0.0,
) -> Reply:
    return Reply(status=status, raw=body, content_type=content_type, delay=delay, stream=False)


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    headers: Mapping[str, str]  # lowercased names
    body: bytes
    received_at: float

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


Responder = Callable[[ReceivedRequest], Reply]


def unused_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (bound, read, released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def unused_url(host: str = "127.0.0.1") -> str:
    """A base URL whose connections are refused."""
    return f"http://{host}:{unused_port(host)}/v1"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    owner: OpenAITestServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that time out and scripted disconnects close sockets under the handler.
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, as real providers; needed for chunked streams
    disable_nagle_algorithm = True  # small SSE writes must leave at once

    def setup(self) -> None:
        super().setup()
        self.server.owner._connection_opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner._connection_closed(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests assert on ``requests``, not on stderr."""

    def do_GET(self) -> None:
        request = self._receive()
        if request.path.rstrip("/").endswith("/models"):
            body = {"object": "list", "data": [{"id": "test-model", "object": "model"}]}
            self._send_json(200, body)
        else:
            self._send_json(404, {"error": {"message": f"no route {request.path}"}})

    def do_POST(self) -> None:
        request = self._receive()
        owner = self.server.owner
        if not request.path.rstrip("/").endswith("/chat/completions"):
            self._send_json(404, {"error": {"message": f"no route {request.path}"}})
            return
        reply = owner._next_reply(request)
        if reply.delay and owner._stopping.wait(reply.delay):
            return
        try:
            self._answer(reply, request)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (its timeout fired) before we answered.
            self.close_connection = True

    def _receive(self) -> ReceivedRequest:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = ReceivedRequest(
            method=self.command,
            path=self.path,
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
            received_at=time.monotonic(),
        )
        self.server.owner._record(request)
        return request

    def _send_json(
        self,
        status: int,
        body: Any,
        headers: Mapping[str, str] | None = None,
        *,
        reply: Reply | None = None,
    ) -> None:
        self._send_bytes(
            status, json.dumps(body).encode(), "application/json", headers, reply=reply
        )

    def _send_bytes(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: Mapping[str, str] | None = None,
        *,
        reply: Reply | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if reply is None or not reply.trickle:
            self.wfile.write(body)
            return
        size = max(1, -(-len(body) // reply.trickle_pieces))
        for start in range(0, len(body), size):
            if start and self.server.owner._stopping.wait(reply.trickle):
                return
            self.wfile.write(body[start : start + size])
            self.wfile.flush()

    def _answer(self, reply: Reply, request: ReceivedRequest) -> None:
        if reply.raw is not None:
            self._send_bytes(
                reply.status, reply.raw, reply.content_type, reply.headers, reply=reply
            )
            return
        if reply.status != 200:
            self._send_json(reply.status, reply.error or {}, reply.headers)
            return
        payload = request.json or {}
        model = reply.model or str(payload.get("model") or "test-model")
        wants_stream = bool(payload.get("stream")) if reply.stream is None else reply.stream
        if wants_stream:
            options = payload.get("stream_options") or {}
            self._stream(reply, model, include_usage=bool(options.get("include_usage")))
        else:
            self._send_json(200, _completion_body(reply, model), reply.headers, reply=reply)

    def _stream(self, reply: Reply, model: str, *, include_usage: bool) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        chunks = _stream_chunks(reply, model, include_usage=include_usage)
        stopping = self.server.owner._stopping
        for sent, chunk in enumerate(chunks):
            # Chunk 0 is the role announcement, so fail_after=n lets n content chunks through.
            if reply.fail_after is not None and sent == reply.fail_after + 1:
                self._fail_stream(reply)
                return
            if sent and reply.chunk_delay and stopping.wait(reply.chunk_delay):
                return
            self._write_chunk(f"data: {json.dumps(chunk)}\n\n".encode())
        self._write_chunk(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")

    def _fail_stream(self, reply: Reply) -> None:
        if reply.failure == "error_event":
            error = {"error": {"message": "scripted failure mid-stream", "type": "server_error"}}
            self._write_chunk(f"data: {json.dumps(error)}\n\n".encode())
            self._write_chunk(b"data: [DONE]\n\n")
            self.wfile.write(b"0\r\n\r\n")
            return
        # Drop the socket inside the chunked body: the client sees a truncated response.
        self.wfile.flush()
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()


_ids = itertools.count(1)


def _usage(reply: Reply) -> dict[str, int]:
    completion = reply.completion_tokens
    if completion is None:
        completion = len((reply.text or "").split()) + 5 * len(reply.tool_calls)
    return {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": reply.prompt_tokens + completion,
    }


def _call_id(call: ToolCallScript, index: int) -> str:
    return call.id or f"call_{index}"


def _completion_body(reply: Reply, model: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text}
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "id": _call_id(call, index),
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments_text()},
            }
            for index, call in enumerate(reply.tool_calls)
        ]
    return {
        "id": f"chatcmpl-test-{next(_ids)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": reply.finish_reason
                or ("tool_calls" if reply.tool_calls else "stop"),
                "logprobs": None,
            }
        ],
        "usage": _usage(reply),
    }


def _stream_chunks(reply: Reply, model: str, *, include_usage: bool) -> list[dict[str, Any]]:
    base = {
        "id": f"chatcmpl-test-{next(_ids)}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
        return {**base, "choices": [choice]}

    pieces = reply.pieces
    if pieces is None:
        # Word by word, keeping the spaces, so the joined deltas equal the text.
        words = (reply.text or "").split(" ")
        spaced = (word if i == 0 else " " + word for i, word in enumerate(words))
        pieces = tuple(piece for piece in spaced if piece)
    chunks = [chunk({"role": "assistant", "content": ""})]
    chunks += [chunk({"content": piece}) for piece in pieces]
    for index, call in enumerate(reply.tool_calls):
        head = {
            "index": index,
            "id": _call_id(call, index),
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        chunks.append(chunk({"tool_calls": [head]}))
        arguments = call.arguments_text()
        # Argument fragments of a few characters, as real servers send them.
        for start in range(0, len(arguments), 7):
            fragment = {"index": index, "function": {"arguments": arguments[start : start + 7]}}
            chunks.append(chunk({"tool_calls": [fragment]}))
    chunks.append(chunk({}, reply.finish_reason or "stop"))
    if include_usage:
        chunks.append({**base, "choices": [], "usage": _usage(reply)})
    return chunks


class OpenAITestServer:
    """See the module docstring. Start with ``with`` or :meth:`start`; always stop it."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        default: Reply | None = None,
        responder: Responder | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.default = default
        self.responder = responder
        self._queue: deque[Reply] = deque()
        self._requests: list[ReceivedRequest] = []
        self._lock = threading.Lock()
        self._received = threading.Condition(self._lock)
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> OpenAITestServer:
        if self._server is not None:
            raise RuntimeError("the server is already running")
        self._stopping.clear()
        server = _Server((self.host, self.port), _Handler)
        server.owner = self
        self.port = int(server.server_address[1])
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"openai-test-server:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stops listening and drops open connections, so clients see a server that is gone."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> OpenAITestServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The base URL to give the client (``http://127.0.0.1:<port>/v1``)."""
        return f"http://{self.host}:{self.port}/v1"

    @property
    def running(self) -> bool:
        return self._server is not None

    # -- scripting --------------------------------------------------------------------------

    def enqueue(self, *replies: Reply) -> None:
        with self._lock:
            self._queue.extend(replies)

    def respond_with(self, responder: Responder | None) -> None:
        """Answers requests the queue does not cover by calling ``responder(request)``."""
        self.responder = responder

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def reset(self) -> None:
        """Forgets queued replies and received requests."""
        with self._lock:
            self._queue.clear()
            self._requests.clear()

    # -- inspection -------------------------------------------------------------------------

    @property
    def requests(self) -> list[ReceivedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def chat_requests(self) -> list[ReceivedRequest]:
        return [r for r in self.requests if r.path.rstrip("/").endswith("/chat/completions")]

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> bool:
        with self._received:
            return self._received.wait_for(lambda: len(self._requests) >= count, timeout)

    # -- called by the handler threads -------------------------------------------------------

    def _record(self, request: ReceivedRequest) -> None:
        with self._received:
            self._requests.append(request)
            self._received.notify_all()

    def _next_reply(self, request: ReceivedRequest) -> Reply:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        if self.responder is not None:
            return self.responder(request)
        if self.default is not None:
            return self.default
        return error_reply(400, "OpenAITestServer: no scripted reply left for this request")

    def _connection_opened(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.add(connection)

    def _connection_closed(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.discard(connection)
