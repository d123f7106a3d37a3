"""The ``openai`` kind: any OpenAI-compatible Chat Completions server (OpenAI, Ollama, vLLM,
llama.cpp, LM Studio) through the official ``openai`` client and ``base_url``.

One call is one attempt: the client's own retries are off (``max_retries=0``) because the
registry owns the retry policy, and every failure is mapped to an :class:`LLMError` kind.
``timeout`` is both the client's timeout and an ``asyncio.timeout`` guard around the attempt,
because the client's timeout applies per read and a server that drips bytes never trips it.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, cast

import httpx
import openai

from conversations.llm.base import Backend, BackendConfig
from conversations.llm.pricing import FREE, ModelPrice, price_for, resolve_price
from conversations.llm.reasoning import ThinkFilter, split_reasoning
from conversations.llm.retry import parse_retry_after
from conversations.llm.types import (
    ChatMessage,
    Completion,
    Done,
    ErrorKind,
    LLMError,
    StreamEvent,
    TokenDelta,
    ToolCall,
    ToolSpec,
    Usage,
)

DEFAULT_MODEL = "gpt-4o-mini"
# Local servers ignore the key, but the client refuses to start without one.
PLACEHOLDER_API_KEY = "not-needed"

# What a client call can raise for a failed attempt. ValueError covers a body that is not JSON.
_CALL_ERRORS = (openai.OpenAIError, TimeoutError, httpx.HTTPError, ValueError)


def tool_to_openai(tool: ToolSpec) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description,
            "parameters": tool.parameters,
        },
    }


def message_to_openai(message: ChatMessage) -> dict[str, Any]:
    """One message in Chat Completions wire format, including tool calls and tool results."""
    if message.role == "tool":
        if not message.tool_call_id:
            raise ValueError("a tool message needs the tool_call_id it answers")
        return {
            "role": "tool",
            "tool_call_id": message.tool_call_id,
            "content": message.content or "",
        }
    out: dict[str, Any] = {"role": message.role}
    if message.tool_calls:
        # Content is optional beside tool calls; omitting it suits more local servers than null.
        if message.content:
            out["content"] = message.content
        out["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments_json()},
            }
            for call in message.tool_calls
        ]
    else:
        out["content"] = message.content or ""
    if message.name:
        out["name"] = message.name
    return out


def _looks_html(text: str) -> bool:
    head = text.lstrip()[:200].lower()
    return head.startswith(("<!doctype html", "<html", "<head", "<body")) or "<html" in head


def _model_unknown(status: int, text: str) -> bool:
    lowered = text.lower()
    return (
        status in (400, 404)
        and "model" in lowered
        and any(
            words in lowered
            for words in ("not found", "does not exist", "not exist", "unknown model", "no such")
        )
    )


def map_error(
    exc: BaseException,
    *,
    backend: str,
    url: str = "",
    model: str = "",
    has_key: bool = True,
    timeout: float | None = None,
) -> LLMError:
    """The LLMError kind for what the client (or the timeout guard) raised, with a message that
    says what happened and where (issue 15 item 10): the URL, the model, and a hint for the
    usual set-up mistakes (a base URL without ``/v1``, a wrong model name, a missing key)."""
    where = f" ({url})" if url else ""
    if isinstance(exc, TimeoutError | openai.APITimeoutError | httpx.TimeoutException):
        waited = f" within {timeout:g} s" if timeout else " in time"
        return LLMError(
            ErrorKind.TIMEOUT, f"the model {model!r} did not answer{waited}{where}", backend=backend
        )
    if isinstance(exc, openai.APIConnectionError | httpx.TransportError):
        cause = exc.__cause__ or exc
        return LLMError(
            ErrorKind.CONNECTION,
            f"connection to {url or 'the server'} failed: {type(cause).__name__}: {cause}"[:500],
            backend=backend,
        )
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        retry_after = parse_retry_after(exc.response.headers)
        body = _body_text(exc)
        detail = str(exc.message)
        if _looks_html(body):
            kind = ErrorKind.SERVER_ERROR if status >= 500 else ErrorKind.BAD_REQUEST
            message = (
                f"HTTP {status} from {url}: the server answered with an HTML page, not the "
                "API's JSON (a proxy or web page at this URL? the base URL should be the API's, "
                "usually ending in /v1)"
            )
            return LLMError(
                kind, message, backend=backend, retry_after=retry_after, status_code=status
            )
        if _model_unknown(status, detail):
            return LLMError(
                ErrorKind.BAD_REQUEST,
                f"HTTP {status} from {url}: the server does not know model {model!r} "
                f"(check the model name it serves): {detail}"[:500],
                backend=backend,
                status_code=status,
            )
        if status == 429:
            kind = ErrorKind.RATE_LIMITED
        elif status == 408:
            kind = ErrorKind.TIMEOUT
        elif status in (401, 403):
            kind = ErrorKind.AUTH
        elif status >= 500:
            kind = ErrorKind.SERVER_ERROR
        else:
            kind = ErrorKind.BAD_REQUEST
        message = f"HTTP {status}: {detail}"
        if status == 404:
            message = f"HTTP 404 from {url}: nothing answers there"
            if not url.rstrip("/").endswith("/v1") and "/chat/completions" in url:
                message += " (does the base URL need the /v1 suffix?)"
            message += f": {detail}"
        elif status in (401, 403):
            message = (
                f"HTTP {status} from {url}: "
                + (
                    "the server refused the API key (wrong or expired?)"
                    if has_key
                    else "the server wants an API key and none is configured"
                )
                + f": {detail}"
            )
        return LLMError(
            kind, message[:500], backend=backend, retry_after=retry_after, status_code=status
        )
    if isinstance(exc, openai.APIResponseValidationError | ValueError):
        return LLMError(ErrorKind.INVALID_RESPONSE, f"unreadable response: {exc}", backend=backend)
    if isinstance(exc, openai.APIError):
        # An error event inside a stream: the server failed while answering.
        return LLMError(ErrorKind.SERVER_ERROR, f"server error: {exc}", backend=backend)
    return LLMError(ErrorKind.INVALID_RESPONSE, f"{type(exc).__name__}: {exc}", backend=backend)


def _body_text(exc: openai.APIStatusError) -> str:
    try:
        return exc.response.text[:2000]
    except Exception:  # a streamed body that was not read
        return ""


@dataclass
class _PartialCall:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class _StreamAccumulator:
    """Builds the final Completion from chunks; tool calls arrive as fragments keyed by index."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.text: list[str] = []
        self.calls: dict[int, _PartialCall] = {}
        self.usage = Usage()
        self.finish_reason: str | None = None
        self.think = ThinkFilter()
        self.reasoning: list[str] = []

    def add(self, chunk: Any) -> str:
        if getattr(chunk, "model", None):
            self.model = chunk.model
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            self.usage = Usage(usage.prompt_tokens or 0, usage.completion_tokens or 0)
        text = ""
        for choice in getattr(chunk, "choices", None) or ():
            if getattr(choice, "index", 0) != 0:
                continue
            delta = choice.delta
            if delta is not None:
                thought = _reasoning_of(delta)
                if thought:
                    self.reasoning.append(thought)
            if delta is not None and delta.content:
                text += self.think.feed(delta.content)
            for fragment in (delta.tool_calls if delta is not None else None) or ():
                partial = self.calls.setdefault(fragment.index, _PartialCall())
                if fragment.id and not partial.id:
                    partial.id = fragment.id
                function = fragment.function
                if function is not None:
                    # Servers either send the name once or repeat it whole in every fragment.
                    if function.name and function.name != partial.name:
                        partial.name += function.name
                    if function.arguments:
                        partial.arguments.append(function.arguments)
            if choice.finish_reason:
                self.finish_reason = choice.finish_reason
        if text:
            self.text.append(text)
        return text

    def finish(self) -> str:
        """Text held back at the end (a partial tag that never completed)."""
        rest = self.think.flush()
        if rest:
            self.text.append(rest)
        return rest

    def reasoning_text(self) -> str:
        return "\n".join(
            part for part in ("".join(self.reasoning), "".join(self.think.reasoning)) if part
        ).strip()

    def tool_calls(self, backend: str) -> tuple[ToolCall, ...]:
        return tuple(
            ToolCall.parse(
                id=partial.id or f"call_{index}",
                name=partial.name,
                raw_arguments="".join(partial.arguments),
                backend=backend,
            )
            for index, partial in sorted(self.calls.items())
        )


def _reasoning_of(message: Any) -> str:
    """``reasoning_content`` (vLLM, DeepSeek, LM Studio) or ``reasoning`` (OpenRouter)."""
    for name in ("reasoning_content", "reasoning"):
        value = getattr(message, name, None)
        if value is None:
            extra = getattr(message, "model_extra", None) or {}
            value = extra.get(name)
        if isinstance(value, str) and value:
            return value
    return ""


def _content_type(chunks: Any) -> str:
    response = getattr(chunks, "response", None)
    headers = getattr(response, "headers", None)
    return str(headers.get("content-type", "")) if headers is not None else ""


class OpenAIBackend(Backend):
    """Options (``BackendConfig.options``): ``temperature``, ``max_tokens``, ``headers`` (extra
    request headers) and ``stream_usage`` (default true; turn off for servers that reject
    ``stream_options``)."""

    kind = "openai"

    def __init__(
        self,
        config: BackendConfig,
        *,
        http_client_factory: Callable[[], httpx.AsyncClient] | None = None,
    ) -> None:
        self.config = config
        self.name = config.name
        self.model = config.model or DEFAULT_MODEL
        self.timeout = config.timeout
        self._http_client_factory = http_client_factory
        options = config.options
        self._temperature: float | None = options.get("temperature")
        self._max_tokens: int | None = options.get("max_tokens")
        self._stream_usage = bool(options.get("stream_usage", True))
        self._headers: dict[str, str] = dict(options.get("headers") or {})
        self._price_overridden = (
            config.price_per_1k_prompt is not None or config.price_per_1k_completion is not None
        )
        self._price = resolve_price(
            self.model,
            prompt_override=config.price_per_1k_prompt,
            completion_override=config.price_per_1k_completion,
        )
        # Connection pools belong to the event loop that opened them; sync callers going
        # through async_to_sync may bring a new loop, so each loop gets its own client.
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, openai.AsyncOpenAI]
        self._clients = weakref.WeakKeyDictionary()

    def _client(self) -> openai.AsyncOpenAI:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            http_client = self._http_client_factory() if self._http_client_factory else None
            client = openai.AsyncOpenAI(
                api_key=self.config.api_key or PLACEHOLDER_API_KEY,
                base_url=self.config.base_url or None,
                timeout=self.timeout,
                max_retries=0,
                default_headers=self._headers or None,
                # openai 3 accepts a legacy ``httpx`` client beside its own ``httpx2`` one.
                http_client=cast(Any, http_client),
            )
            self._clients[loop] = client
        return client

    def _request(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec],
        temperature: float | None,
        *,
        stream: bool,
        model: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": model or self.model,
            "messages": [message_to_openai(message) for message in messages],
        }
        if tools:
            body["tools"] = [tool_to_openai(tool) for tool in tools]
        temperature = self._temperature if temperature is None else temperature
        if temperature is not None:
            body["temperature"] = temperature
        if self._max_tokens:
            body["max_tokens"] = self._max_tokens
        if stream:
            body["stream"] = True
            if self._stream_usage:
                body["stream_options"] = {"include_usage": True}
        return body

    def _price_for(self, model: str) -> ModelPrice:
        # The configured name decides; a local alias unknown to the table may still report a
        # known model in the response.
        if self._price_overridden or self._price != FREE:
            return self._price
        return price_for(model)

    def _cost(self, model: str, usage: Usage) -> Decimal:
        return self._price_for(model).cost(usage)

    @property
    def url(self) -> str:
        """Where chat completions go, for messages and logs."""
        base = (self.config.base_url or "https://api.openai.com/v1").rstrip("/")
        return f"{base}/chat/completions"

    def _error(self, exc: BaseException, model: str, timeout: float) -> LLMError:
        return map_error(
            exc,
            backend=self.name,
            url=self.url,
            model=model,
            has_key=bool(self.config.api_key),
            timeout=timeout,
        )

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] = (),
        temperature: float | None = None,
        model: str | None = None,
        time_limit: float | None = None,
    ) -> Completion:
        body = self._request(messages, tools, temperature, stream=False, model=model)
        limit = min(time_limit, self.timeout) if time_limit else self.timeout
        started = time.perf_counter()
        try:
            async with asyncio.timeout(limit):
                response = await self._client().chat.completions.create(**body, timeout=limit)
        except _CALL_ERRORS as exc:
            raise self._error(exc, body["model"], limit) from exc
        latency_ms = (time.perf_counter() - started) * 1000
        return self._completion_from_response(response, latency_ms, body["model"])

    def _completion_from_response(
        self, response: Any, latency_ms: float, requested: str = ""
    ) -> Completion:
        if isinstance(response, str):
            # The client hands back the text of a body that is not JSON.
            what = "an HTML page" if _looks_html(response) else "a body that is not JSON"
            raise LLMError(
                ErrorKind.INVALID_RESPONSE,
                f"{self.url} answered with {what}, not a chat completion (is the base URL the "
                "API's, usually ending in /v1?)",
                backend=self.name,
            )
        choices = getattr(response, "choices", None)
        if not choices:
            raise LLMError(
                ErrorKind.INVALID_RESPONSE, "the response has no choices", backend=self.name
            )
        message = choices[0].message
        calls = []
        for index, call in enumerate(getattr(message, "tool_calls", None) or ()):
            function = getattr(call, "function", None)
            if function is None:
                raise LLMError(
                    ErrorKind.INVALID_RESPONSE,
                    f"unsupported tool call type {getattr(call, 'type', None)!r}",
                    backend=self.name,
                )
            calls.append(
                ToolCall.parse(
                    id=call.id or f"call_{index}",
                    name=function.name or "",
                    raw_arguments=function.arguments or "",
                    backend=self.name,
                )
            )
        raw_usage = getattr(response, "usage", None)
        usage = (
            Usage(raw_usage.prompt_tokens or 0, raw_usage.completion_tokens or 0)
            if raw_usage is not None
            else Usage()
        )
        model = getattr(response, "model", None) or requested or self.model
        text, thought = split_reasoning(getattr(message, "content", None) or "")
        reasoning = "\n".join(part for part in (_reasoning_of(message), thought) if part)
        return Completion(
            text=text,
            reasoning=reasoning,
            tool_calls=tuple(calls),
            usage=usage,
            model=model,
            backend=self.name,
            latency_ms=latency_ms,
            cost=self._cost(model, usage),
            finish_reason=choices[0].finish_reason or "",
        )

    async def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] = (),
        temperature: float | None = None,
        model: str | None = None,
        time_limit: float | None = None,
    ) -> AsyncIterator[StreamEvent]:
        body = self._request(messages, tools, temperature, stream=True, model=model)
        # ``time_limit`` (the turn's deadline) bounds the whole attempt; the configured one each
        # wait.
        limit = min(time_limit, self.timeout) if time_limit else self.timeout
        loop = asyncio.get_running_loop()
        ends_at = loop.time() + limit
        started = time.perf_counter()
        try:
            async with asyncio.timeout(limit):
                chunks = await self._client().chat.completions.create(**body, timeout=limit)
        except _CALL_ERRORS as exc:
            raise self._error(exc, body["model"], limit) from exc
        content_type = _content_type(chunks)
        if content_type and "event-stream" not in content_type:
            await chunks.close()
            raise LLMError(
                ErrorKind.INVALID_RESPONSE,
                f"{self.url} answered a stream request with a plain {content_type} body, not "
                "server-sent events (does the server support streaming?)",
                backend=self.name,
            )
        accumulator = _StreamAccumulator(body["model"])
        iterator = aiter(chunks)
        try:
            while True:
                # The guard covers each wait for the next chunk, never the consumer's time
                # between chunks: a long answer that keeps flowing is not a timeout.
                wait = (
                    self.timeout if time_limit is None else min(self.timeout, ends_at - loop.time())
                )
                try:
                    async with asyncio.timeout(max(wait, 0.0)):
                        chunk = await anext(iterator)
                except StopAsyncIteration:
                    break
                except _CALL_ERRORS as exc:
                    raise self._error(exc, body["model"], limit) from exc
                text = accumulator.add(chunk)
                if text:
                    yield TokenDelta(text)
            rest = accumulator.finish()
            if rest:
                yield TokenDelta(rest)
        finally:
            await chunks.close()
        if accumulator.finish_reason is None:
            raise LLMError(
                ErrorKind.INVALID_RESPONSE,
                "the stream ended before the model finished",
                backend=self.name,
            )
        latency_ms = (time.perf_counter() - started) * 1000
        model = accumulator.model
        completion = Completion(
            text="".join(accumulator.text),
            tool_calls=accumulator.tool_calls(self.name),
            usage=accumulator.usage,
            model=model,
            backend=self.name,
            latency_ms=latency_ms,
            cost=self._cost(model, accumulator.usage),
            finish_reason=accumulator.finish_reason,
            reasoning=accumulator.reasoning_text(),
        )
        yield Done(completion)

    async def aclose(self) -> None:
        # Only this loop's client can be closed from here; the others die with their loops.
        client = self._clients.pop(asyncio.get_running_loop(), None)
        self._clients.clear()
        if client is not None:
            await client.close()
