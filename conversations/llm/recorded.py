"""The ``recorded`` kind: VCR-style replay of model responses for tests (SPEC §5).

A cassette is a list of interactions ``{"request": {"messages", "tools"}, "response": ...}`` where
the request is in Chat Completions wire format and the response is either a ``chat.completion``
JSON object or the list of ``chat.completion.chunk`` objects of a stream. Requests match on a hash
of their normalised ``messages`` and ``tools`` only (not the model, temperature or stream flag),
so a cassette recorded with one model or mode replays for another: a completion is served as
chunks to a streaming caller and chunks are assembled for a non-streaming one.

Replay goes through the real ``openai`` client: the backend is an :class:`OpenAIBackend` whose
HTTP client has an ``httpx.MockTransport`` serving the cassette, so request building, response
parsing and SSE decoding are the production code paths. A request with no recorded answer raises
:class:`CassetteMissError` (a configuration error: never retried or absorbed by fallback).

Recording (``options["record"] = True`` with ``base_url`` of a real server) sends every request
to the server through a transport that keeps a copy of each successful exchange and saves the
cassette after each one; it starts from an empty cassette, so re-recording replaces the file.
Streams are buffered while recording, so tokens arrive all at once in that mode.

Options: ``cassette`` (a path, a :class:`Cassette` or a list of interactions), ``record``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx

from conversations.llm.base import BackendConfig
from conversations.llm.openai_backend import OpenAIBackend, message_to_openai, tool_to_openai
from conversations.llm.types import ChatMessage, LLMConfigurationError, ToolSpec

CASSETTE_VERSION = 1
# Never resolved: the mock transport answers before any connection is made.
REPLAY_BASE_URL = "http://recorded.invalid/v1"
RECORDED_MODEL = "recorded"

# Hop-by-hop and encoding headers describe the original wire body, not the copy we serve.
_DROPPED_HEADERS = {"content-length", "content-encoding", "transfer-encoding", "connection"}


class CassetteMissError(LLMConfigurationError):
    """No recorded interaction matches a request; the message describes the request."""

    def __init__(self, message: str, *, key: str) -> None:
        super().__init__(message)
        self.key = key


def _without_nulls(value: Any) -> Any:
    # ``"content": null`` and a missing ``content`` mean the same request.
    if isinstance(value, Mapping):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_without_nulls(item) for item in value]
    return value


def normalise_request(body: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "messages": _without_nulls(list(body.get("messages") or [])),
        "tools": _without_nulls(list(body.get("tools") or [])),
    }


def request_key(body: Mapping[str, Any]) -> str:
    canonical = json.dumps(
        normalise_request(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def describe_request(body: Mapping[str, Any]) -> str:
    """A short human description of a request, for miss errors."""
    request = normalise_request(body)
    messages = request["messages"]
    roles = []
    for message in messages:
        role = str(message.get("role"))
        calls = [call.get("function", {}).get("name") for call in message.get("tool_calls", [])]
        roles.append(f"{role}(tool_calls: {', '.join(map(str, calls))})" if calls else role)
    tools = [tool.get("function", {}).get("name") for tool in request["tools"]]
    last = messages[-1] if messages else {}
    content = str(last.get("content", ""))
    if len(content) > 200:
        content = content[:200] + "…"
    return (
        f"{len(messages)} messages [{', '.join(roles)}], tools [{', '.join(map(str, tools))}]; "
        f"last message ({last.get('role')}): {content!r}"
    )


@dataclass
class Interaction:
    request: dict[str, Any]
    response: dict[str, Any] | list[dict[str, Any]]
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.request = normalise_request(self.request)

    @property
    def key(self) -> str:
        return request_key(self.request)

    @classmethod
    def for_messages(
        cls,
        messages: Sequence[ChatMessage],
        response: dict[str, Any] | list[dict[str, Any]],
        *,
        tools: Sequence[ToolSpec] = (),
    ) -> Interaction:
        """An interaction written by hand from the library's own message types."""
        return cls(
            request={
                "messages": [message_to_openai(message) for message in messages],
                "tools": [tool_to_openai(tool) for tool in tools],
            },
            response=response,
        )

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Interaction:
        return cls(
            request=dict(data["request"]),
            response=data["response"],
            status=int(data.get("status", 200)),
            headers=dict(data.get("headers") or {}),
        )

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"request": self.request, "response": self.response}
        if self.status != 200:
            data["status"] = self.status
        if self.headers:
            data["headers"] = self.headers
        return data


class Cassette:
    """Recorded interactions, optionally backed by a JSON file.

    Several interactions with the same request replay in recorded order; once they are used up
    the last one repeats, so a test may make the same call again.
    """

    def __init__(
        self,
        interactions: Iterable[Interaction | Mapping[str, Any]] = (),
        *,
        path: Path | None = None,
    ) -> None:
        self.path = path
        self.interactions: list[Interaction] = []
        self._by_key: dict[str, list[Interaction]] = {}
        self._played: dict[str, int] = {}
        for interaction in interactions:
            self.add(
                interaction
                if isinstance(interaction, Interaction)
                else Interaction.from_json(interaction)
            )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Cassette:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise LLMConfigurationError(f"cassette {str(path)!r} does not exist") from None
        except ValueError as exc:
            raise LLMConfigurationError(f"cassette {str(path)!r} is not valid JSON: {exc}") from exc
        interactions = data["interactions"] if isinstance(data, dict) else data
        return cls(interactions, path=path)

    def __len__(self) -> int:
        return len(self.interactions)

    def add(self, interaction: Interaction) -> Interaction:
        self.interactions.append(interaction)
        self._by_key.setdefault(interaction.key, []).append(interaction)
        return interaction

    def record(
        self,
        body: Mapping[str, Any],
        response: dict[str, Any] | list[dict[str, Any]],
        *,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> Interaction:
        return self.add(
            Interaction(dict(body), response, status=status, headers=dict(headers or {}))
        )

    def match(self, body: Mapping[str, Any]) -> Interaction:
        key = request_key(body)
        candidates = self._by_key.get(key)
        if not candidates:
            where = f"cassette {str(self.path)!r}" if self.path else "the in-memory cassette"
            raise CassetteMissError(
                f"no recorded interaction matches this request (key {key[:12]}) in {where} "
                f"with {len(self.interactions)} interactions. Request: {describe_request(body)}. "
                "Record it with options['record']=True against a real server, or add it.",
                key=key,
            )
        played = self._played.get(key, 0)
        self._played[key] = played + 1
        return candidates[min(played, len(candidates) - 1)]

    def to_json(self) -> dict[str, Any]:
        return {
            "version": CASSETTE_VERSION,
            "interactions": [interaction.to_json() for interaction in self.interactions],
        }

    def save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename, so an interrupted recording never leaves half a cassette.
        partial = self.path.with_suffix(self.path.suffix + ".partial")
        partial.write_text(
            json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        partial.replace(self.path)


# -- wire formats ----------------------------------------------------------------------------


def completion_json(
    text: str = "",
    *,
    tool_calls: Sequence[tuple[str, str, Mapping[str, Any] | str]] = (),
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
    model: str = RECORDED_MODEL,
    finish_reason: str | None = None,
) -> dict[str, Any]:
    """A ``chat.completion`` body; ``tool_calls`` are ``(id, name, arguments)`` triples."""
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if tool_calls:
        message["tool_calls"] = [
            {
                "id": call_id,
                "type": "function",
                "function": {
                    "name": name,
                    "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments),
                },
            }
            for call_id, name, arguments in tool_calls
        ]
    return {
        "id": "chatcmpl-recorded",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": finish_reason or ("tool_calls" if tool_calls else "stop"),
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def chunks_from_completion(completion: Mapping[str, Any]) -> list[dict[str, Any]]:
    base = {
        "id": completion.get("id", "chatcmpl-recorded"),
        "object": "chat.completion.chunk",
        "created": completion.get("created", 0),
        "model": completion.get("model", RECORDED_MODEL),
    }
    choice = completion["choices"][0]
    message = choice.get("message") or {}

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}

    chunks = [chunk({"role": "assistant", "content": message.get("content") or ""})]
    for index, call in enumerate(message.get("tool_calls") or []):
        chunks.append(chunk({"tool_calls": [{"index": index, **call}]}))
    chunks.append(chunk({}, choice.get("finish_reason") or "stop"))
    if completion.get("usage"):
        chunks.append({**base, "choices": [], "usage": completion["usage"]})
    return chunks


def completion_from_chunks(chunks: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    text: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    finish_reason = "stop"
    usage = None
    first = chunks[0] if chunks else {}
    for chunk in chunks:
        usage = chunk.get("usage") or usage
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            text.append(delta.get("content") or "")
            for fragment in delta.get("tool_calls") or []:
                call = calls.setdefault(
                    fragment.get("index", 0),
                    {"id": "", "type": "function", "function": {"name": "", "arguments": ""}},
                )
                call["id"] = call["id"] or fragment.get("id") or ""
                function = fragment.get("function") or {}
                if function.get("name") and function["name"] != call["function"]["name"]:
                    call["function"]["name"] += function["name"]
                call["function"]["arguments"] += function.get("arguments") or ""
            finish_reason = choice.get("finish_reason") or finish_reason
    message: dict[str, Any] = {"role": "assistant", "content": "".join(text) or None}
    if calls:
        message["tool_calls"] = [calls[index] for index in sorted(calls)]
    return {
        "id": first.get("id", "chatcmpl-recorded"),
        "object": "chat.completion",
        "created": first.get("created", 0),
        "model": first.get("model", RECORDED_MODEL),
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
        "usage": usage,
    }


def sse_body(chunks: Iterable[Mapping[str, Any]]) -> bytes:
    events = [f"data: {json.dumps(chunk, separators=(',', ':'))}\n\n" for chunk in chunks]
    return ("".join(events) + "data: [DONE]\n\n").encode()


def parse_sse(body: bytes) -> list[dict[str, Any]]:
    chunks = []
    for line in body.decode().splitlines():
        if line.startswith("data:"):
            data = line[len("data:") :].strip()
            if data and data != "[DONE]":
                chunks.append(json.loads(data))
    return chunks


# -- transports ------------------------------------------------------------------------------


def _is_chat_completion(request: httpx.Request) -> bool:
    return request.method == "POST" and request.url.path.endswith("/chat/completions")


class ReplayHandler:
    """Answers chat completion requests from a cassette (for ``httpx.MockTransport``)."""

    def __init__(self, cassette: Cassette) -> None:
        self.cassette = cassette

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if not _is_chat_completion(request):
            return httpx.Response(404, json={"error": {"message": "not recorded"}})
        body = json.loads(request.content)
        interaction = self.cassette.match(body)
        if interaction.status != 200:
            return httpx.Response(
                interaction.status, json=interaction.response, headers=interaction.headers
            )
        response = interaction.response
        if body.get("stream"):
            chunks = response if isinstance(response, list) else chunks_from_completion(response)
            return httpx.Response(
                200, content=sse_body(chunks), headers={"content-type": "text/event-stream"}
            )
        completion = response if isinstance(response, dict) else completion_from_chunks(response)
        return httpx.Response(200, json=completion)


class RecordingTransport(httpx.AsyncBaseTransport):
    """Passes requests to a real server and records each successful chat completion."""

    def __init__(self, cassette: Cassette, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self.cassette = cassette
        self._inner = inner or httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        if not _is_chat_completion(request):
            return response
        try:
            content = await response.aread()
        finally:
            await response.aclose()
        if response.status_code == 200:
            body = json.loads(await request.aread())
            recorded: dict[str, Any] | list[dict[str, Any]] = (
                parse_sse(content) if body.get("stream") else json.loads(content)
            )
            self.cassette.record(body, recorded)
            await asyncio.to_thread(self.cassette.save)
        headers = [(k, v) for k, v in response.headers.items() if k not in _DROPPED_HEADERS]
        return httpx.Response(response.status_code, headers=headers, content=content)

    async def aclose(self) -> None:
        await self._inner.aclose()


class RecordedBackend(OpenAIBackend):
    kind = "recorded"

    def __init__(self, config: BackendConfig, *, cassette: Cassette | None = None) -> None:
        self.recording = bool(config.options.get("record"))
        self.cassette = cassette or _cassette_from_options(config.options, self.recording)
        config = replace(config, model=config.model or RECORDED_MODEL)
        if self.recording:
            if not config.base_url:
                raise LLMConfigurationError(
                    f"recording backend {config.name!r} needs the base_url of a real server"
                )
            super().__init__(config, http_client_factory=self._recording_client)
        else:
            super().__init__(
                replace(config, base_url=REPLAY_BASE_URL), http_client_factory=self._replay_client
            )

    def _replay_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(ReplayHandler(self.cassette)))

    def _recording_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=RecordingTransport(self.cassette))


def _cassette_from_options(options: Mapping[str, Any], recording: bool) -> Cassette:
    source = options.get("cassette", options.get("interactions"))
    if isinstance(source, Cassette):
        return source
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        return Cassette(path=path) if recording else Cassette.load(path)
    if isinstance(source, list | tuple):
        return Cassette(source, path=None)
    return Cassette(path=None)
