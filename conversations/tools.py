"""Calling an imported operation on the business's API (SPEC §6).

Arguments come from a model, so they are checked against the operation's JSON Schema first and
never reach headers that carry credentials. The call goes over real HTTP through the SSRF guard
(``safehttp``) with the upstream allow-list; the spec's credential is added here and appears in
no log, record or prompt. Failures are sorted into the taxonomy the runtime acts on:

- ``transient`` (timeouts, 429, 5xx): retried up to 3 times with full-jitter backoff, honouring
  ``Retry-After`` — non-idempotent calls only when an idempotency key is sent;
- ``validation`` (other 4xx): explained to the customer;
- ``auth`` (401/403) and ``unknown`` (blocked, a 2xx whose body is not the JSON it claims,
  anything else): escalated.

``ToolOutcome.message`` is the internal detail (an exception's text, a host and port): it goes
to the tool-call record, the logs and the handoff packet for staff, never to the customer or
the model (``public_message``; docs/tool-calls.md).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import jsonschema
import structlog
from django.conf import settings
from prometheus_client import Counter

import safehttp
from config import chaos
from conversations.llm.retry import parse_retry_after
from openapi_import import serialization as wire
from openapi_import.identity import bound_headers, bound_properties
from openapi_import.models import ApiSpec, Operation

if TYPE_CHECKING:
    from conversations.identity import Identity

logger = structlog.get_logger(__name__)

TOOL_CALLS = Counter("actiondesk_tool_calls_total", "Tool calls by outcome", ["outcome"])

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
IDEMPOTENCY_HEADER = "idempotency-key"
# Headers a model may never set, whatever the spec declares.
FORBIDDEN_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization", "host"})
MAX_RESULT_BYTES = 64 * 1024


@dataclass(frozen=True)
class RetrySettings:
    attempts: int = 3  # retries after the first try
    base: float = 0.5
    cap: float = 8.0
    retry_after_cap: float = 20.0


@dataclass
class ToolOutcome:
    ok: bool
    status_code: int | None = None
    data: Any = None
    error_kind: str = ""  # "", transient, validation, auth, unknown
    message: str = ""
    attempts: int = 0
    latency_ms: float = 0.0
    delays: list[float] = field(default_factory=list)

    @property
    def escalate(self) -> bool:
        return self.error_kind in ("auth", "unknown")

    @property
    def service_failed(self) -> bool:
        """The service failed us (unreachable, timed out, 5xx, refused our credentials, an
        unreadable answer), as opposed to answering that the request was wrong (4xx)."""
        return not self.ok and self.error_kind != "validation"

    @property
    def public_message(self) -> str:
        """What may be said about the failure outside the record: no exception text, host,
        port or upstream body."""
        return PUBLIC_ERRORS.get(self.error_kind, PUBLIC_ERRORS["unknown"]) if not self.ok else ""


PUBLIC_ERRORS = {
    "transient": "The service did not respond in time or could not be reached.",
    "auth": "The service refused the assistant's access.",
    "unknown": "The service failed or sent an answer that could not be read.",
    "validation": "The service did not accept the request.",
}


class ToolArgumentError(ValueError):
    """The arguments do not fit the operation's schema."""


def tool_policy() -> safehttp.Policy:
    return safehttp.Policy(
        allowed_hosts=frozenset(h.lower() for h in settings.UPSTREAM_ALLOWED_HOSTS),
        require_allowlist=True,
        # Production: an allow-listed name must still resolve to a public address, so a
        # tenant's DNS cannot point a tool at the metadata service. Development lets the demo
        # shop on localhost through.
        allowlist_bypasses_address_check=settings.UPSTREAM_ALLOW_PRIVATE,
        max_bytes=MAX_RESULT_BYTES * 16,
        timeout=settings.TOOL_TIMEOUT_SECONDS,
        max_redirects=0,
    )


def credential_properties(operation: Operation) -> set[str]:
    """Properties the model may never fill: those the importer classified as credentials and
    any parameter that is an ``apiKey`` security scheme's own parameter."""
    keys = {(loc, name.lower()) for loc, name in _api_key_schemes(operation.spec).values()}
    found = {p for p in operation.credential_parameters or [] if isinstance(p, str)}
    for prop, location in operation.parameter_locations.items():
        name = operation.parameter_names.get(prop, prop)
        if (location, str(name).lower()) in keys:
            found.add(prop)
    return found


def identity_properties(operation: Operation) -> set[str]:
    """Properties bound to the verified customer's identity: never the model's to fill."""
    return bound_properties(operation.identity_bindings or {})


def without_credentials(operation: Operation, arguments: dict[str, Any]) -> dict[str, Any]:
    """The arguments minus credential and identity-bound properties: what is validated,
    stored and shown for approval. Bound values come from the identity when the call is sent,
    so whatever a model or the chat put there is dropped."""
    if not isinstance(arguments, dict):
        return arguments
    hidden = credential_properties(operation)
    dropped = sorted(p for p in arguments if p in hidden)
    if dropped:
        logger.info(
            "tool_credential_arguments_dropped",
            operation=operation.operation_id,
            properties=dropped,
        )
    bound = identity_properties(operation)
    overridden = sorted(p for p in arguments if p in bound)
    if overridden:
        logger.warning(
            "tool_identity_arguments_dropped",
            operation=operation.operation_id,
            properties=overridden,
        )
    return {k: v for k, v in arguments.items() if k not in hidden and k not in bound}


def with_identity(
    operation: Operation, arguments: dict[str, Any], identity: Identity | None
) -> tuple[dict[str, Any], dict[str, str]]:
    """The arguments with the bound properties filled from ``identity``, and the extra
    headers its ``header:`` bindings add. An operation with bindings and no verified customer
    is refused: it must never go out with a blank or model-chosen customer."""
    bindings = operation.identity_bindings or {}
    if not bindings:
        return arguments, {}
    if identity is None:
        raise ToolArgumentError("This action needs a verified customer.")
    filled = dict(arguments)
    for prop in bound_properties(bindings):
        value = identity.claim(str(bindings[prop]))
        if not value:
            raise ToolArgumentError(f"The verified identity has no {bindings[prop]}.")
        filled[prop] = value
    headers: dict[str, str] = {}
    for name, claim in bound_headers(bindings).items():
        value = identity.claim(claim)
        if not value:
            raise ToolArgumentError(f"The verified identity has no {claim}.")
        headers[name] = value
    return filled, headers


def model_schema(operation: Operation) -> dict[str, Any]:
    """The operation's JSON Schema as the model sees it: credential and identity-bound
    properties left out (the rest, root ``$defs`` included, as it is)."""
    schema = operation.parameters_schema or {"type": "object", "properties": {}}
    hidden = credential_properties(operation) | identity_properties(operation)
    if not hidden or not isinstance(schema.get("properties"), dict):
        return schema
    out = dict(schema)
    out["properties"] = {k: v for k, v in schema["properties"].items() if k not in hidden}
    if isinstance(schema.get("required"), list):
        out["required"] = [r for r in schema["required"] if r not in hidden]
    return out


def validate_arguments(operation: Operation, arguments: dict[str, Any]) -> None:
    if not isinstance(arguments, dict):
        raise ToolArgumentError("Arguments must be an object.")
    validator = jsonschema.Draft202012Validator(model_schema(operation))
    errors = sorted(validator.iter_errors(arguments), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        where = ".".join(str(p) for p in first.absolute_path) or "arguments"
        raise ToolArgumentError(f"{where}: {first.message}")


def supports_idempotency_key(operation: Operation) -> bool:
    return any(
        name.lower() == IDEMPOTENCY_HEADER and location == "header"
        for name, location in operation.parameter_locations.items()
    )


@dataclass(frozen=True)
class PreparedRequest:
    method: str
    url: str
    headers: dict[str, str]
    json: Any = None
    content: bytes | None = None


def _api_key_schemes(spec: ApiSpec) -> dict[str, tuple[str, str]]:
    """Security scheme name -> (in, parameter name) for the spec's ``apiKey`` schemes."""
    schemes: dict[str, tuple[str, str]] = {}
    for key, scheme in (spec.security_schemes or {}).items():
        if not isinstance(scheme, dict) or scheme.get("type") != "apiKey":
            continue
        location, name = scheme.get("in"), scheme.get("name")
        if location in ("header", "query", "cookie") and isinstance(name, str) and name:
            schemes[str(key)] = (location, name)
    return schemes


def credential_placements(operation: Operation) -> list[tuple[str, str]]:
    """Where the spec's upstream credential goes: (location, name) pairs.

    A configured ``auth_header`` wins (the admin's explicit choice). Without one, the
    credential goes where the operation's security requirement puts its API key (the first
    alternative that names an ``apiKey`` scheme: header, query or cookie), or else where a
    declared credential parameter is that scheme's parameter.
    """
    spec = operation.spec
    if not spec.auth_value:
        return []
    if spec.auth_header:
        return [("header", spec.auth_header)]
    schemes = _api_key_schemes(spec)
    for requirement in operation.security or []:
        named = [schemes[n] for n in requirement if n in schemes]
        if named:
            # One credential can fill one key; a requirement that needs two cannot be met.
            return named[:1]
    hidden = credential_properties(operation)
    declared = {
        (location, str(operation.parameter_names.get(prop, prop)).lower())
        for prop, location in operation.parameter_locations.items()
        if prop in hidden
    }
    return [k for k in schemes.values() if (k[0], k[1].lower()) in declared][:1]


def _wire_entry(operation: Operation, prop: str, location: str) -> dict[str, Any]:
    stored = (operation.parameter_serialization or {}).get(prop)
    if isinstance(stored, dict) and stored:
        return stored
    # Operations imported before serialization was recorded: the version's defaults.
    if operation.spec.spec_version.startswith("2"):
        return {"in": location, "collectionFormat": "csv"}
    return wire.default_for(location)


def prepare_request(
    operation: Operation,
    arguments: dict[str, Any],
    *,
    idempotency_key: str = "",
    identity: Identity | None = None,
) -> PreparedRequest:
    """The HTTP request for a call, each argument serialized as the spec says (SPEC §6)."""
    spec = operation.spec
    # An operation-level server wins only when absolute; a relative one (a spec uploaded rather
    # than fetched) means "where the API is", which staff set as the spec's base URL.
    own = operation.server_url if urlsplit(operation.server_url).scheme else ""
    base = (own or spec.base_url).rstrip("/")
    if not urlsplit(base).scheme:
        raise ToolArgumentError(
            f"The spec '{spec.title}' has no absolute base URL; set it in the admin."
        )
    filled, extra_headers = with_identity(
        operation, without_credentials(operation, arguments), identity
    )
    try:
        return _prepare(operation, filled, base, idempotency_key, extra_headers)
    except wire.SerializationError as exc:
        raise ToolArgumentError(str(exc)) from exc


def _prepare(
    operation: Operation,
    arguments: dict[str, Any],
    base: str,
    idempotency_key: str,
    extra_headers: dict[str, str],
) -> PreparedRequest:
    spec = operation.spec
    path = operation.path
    query: list[tuple[str, Any, dict[str, Any]]] = []
    cookies: list[tuple[str, str]] = []
    headers: dict[str, str] = {"Accept": "application/json"}
    body: Any = None
    placements = credential_placements(operation)
    credential_names = {(loc, name.lower()) for loc, name in placements}
    for prop, value in arguments.items():
        location = operation.parameter_locations.get(prop)
        name = operation.parameter_names.get(prop, prop)
        if location in ("body", "formData"):
            body = value
            continue
        if location not in ("path", "query", "header", "cookie"):
            continue  # unknown names are dropped: nothing the model says is sent blind
        entry = _wire_entry(operation, prop, location)
        if location == "path":
            path = path.replace("{" + name + "}", wire.expand_path(name, value, entry))
        elif location == "query":
            if ("query", name.lower()) not in credential_names:
                query.append((name, value, entry))
        elif location == "header":
            lowered = name.lower()
            if (
                lowered in FORBIDDEN_HEADERS
                or lowered == spec.auth_header.lower()
                or ("header", lowered) in credential_names
            ):
                continue
            if value is not None:
                headers[name] = wire.header_value(name, value, entry)
        elif ("cookie", name.lower()) not in credential_names:
            cookies.extend(wire.cookie_pairs(name, value, entry))
    for name, value in extra_headers.items():
        # The identity wins over anything of the same name.
        headers = {k: v for k, v in headers.items() if k.lower() != name.lower()}
        headers[name] = value
    if "{" in path:
        raise ToolArgumentError(f"Missing path parameters in {operation.path}.")
    if idempotency_key and supports_idempotency_key(operation):
        headers = {k: v for k, v in headers.items() if k.lower() != IDEMPOTENCY_HEADER}
        headers["Idempotency-Key"] = idempotency_key
    for location, name in placements:
        if location == "header":
            headers = {k: v for k, v in headers.items() if k.lower() != name.lower()}
            headers[name] = spec.auth_value
        elif location == "query":
            query.append((name, spec.auth_value, {}))
        else:
            cookies.append((quote(name, safe=""), quote(spec.auth_value, safe="")))
    if cookies:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies)
    url = base + path
    query_text = wire.query_string(query)
    if query_text:
        url += "?" + query_text
    if body is None:
        return PreparedRequest(operation.method, url, headers)
    body_entry = (operation.parameter_serialization or {}).get("body") or {}
    content_type = operation.body_content_type or "application/json"
    media = content_type.split(";", 1)[0].strip().lower()
    encoding = body_entry.get("encoding") or {}
    if not body_entry and spec.spec_version.startswith("2") and isinstance(body, dict):
        encoding = {k: {"collectionFormat": "csv"} for k, v in body.items() if isinstance(v, list)}
    if "json" in media:
        return PreparedRequest(operation.method, url, headers, json=body)
    if media == wire.FORM:
        headers["Content-Type"] = wire.FORM
        return PreparedRequest(
            operation.method, url, headers, content=wire.form_body(body, encoding)
        )
    if media == wire.MULTIPART:
        content, headers["Content-Type"] = wire.multipart_body(body, encoding)
        return PreparedRequest(operation.method, url, headers, content=content)
    if isinstance(body, str):
        headers["Content-Type"] = content_type
        return PreparedRequest(operation.method, url, headers, content=body.encode("utf-8"))
    raise ToolArgumentError(f"A {content_type} request body must be given as text.")


def _decode(response: safehttp.SafeResponse) -> tuple[Any, bool]:
    """The body's data, and whether it is readable: JSON, or text the service says is plain
    text. A body that claims JSON (or says nothing) but does not parse, or an HTML page, is
    not: a proxy's error page or a broken service, never a result."""
    if not response.content:
        return None, True
    try:
        return response.json(), True
    except ValueError:
        content_type = response.headers.get("content-type", "").lower()
        readable = content_type.startswith("text/") and "html" not in content_type
        return response.text()[:MAX_RESULT_BYTES], readable


def classify_status(status: int) -> str:
    if 200 <= status < 300:
        return ""
    if status in (408, 425, 429) or status >= 500:
        return "transient"
    if status in (401, 403):
        return "auth"
    if 400 <= status < 500:
        return "validation"
    return "unknown"


async def execute(
    operation: Operation,
    arguments: dict[str, Any],
    *,
    idempotency_key: str = "",
    retry: RetrySettings | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    rng: random.Random | None = None,
    policy: safehttp.Policy | None = None,
    identity: Identity | None = None,
) -> ToolOutcome:
    """Call the operation; never raises for upstream failures, returns the classified outcome.
    ``identity`` is the conversation's verified customer, whose claims fill bound parameters."""
    retry = retry or RetrySettings()
    rng = rng or random.Random()
    started = time.perf_counter()
    outcome = ToolOutcome(ok=False)
    try:
        arguments = without_credentials(operation, arguments)
        validate_arguments(operation, arguments)
        request = prepare_request(
            operation, arguments, idempotency_key=idempotency_key, identity=identity
        )
    except ToolArgumentError as exc:
        outcome.error_kind, outcome.message = "validation", str(exc)
        return _finish(operation, outcome, started)
    can_retry = operation.method in IDEMPOTENT_METHODS or (
        bool(idempotency_key) and supports_idempotency_key(operation)
    )
    policy = policy or tool_policy()
    while True:
        outcome.attempts += 1
        retry_after: float | None = None
        try:
            chaos.tool_attempt(operation.operation_id)  # off unless CHAOS_ENABLED
            response = await safehttp.async_safe_request(
                request.method,
                request.url,
                policy=policy,
                headers=request.headers,
                json=request.json,
                content=request.content,
            )
        except safehttp.BlockedDestination as exc:
            outcome.error_kind, outcome.message = "unknown", exc.reason
            break
        except (safehttp.DeadlineExceeded, safehttp.UpstreamError) as exc:
            outcome.error_kind, outcome.message = "transient", exc.reason
        except safehttp.SafeHttpError as exc:
            outcome.error_kind, outcome.message = "unknown", exc.reason
            break
        else:
            outcome.status_code = response.status_code
            outcome.data, readable = _decode(response)
            outcome.error_kind = classify_status(response.status_code)
            if not outcome.error_kind and not readable:
                content_type = response.headers.get("content-type", "") or "no content type"
                outcome.error_kind = "unknown"
                outcome.message = (
                    f"HTTP {response.status_code} with a body that is not valid JSON "
                    f"({content_type}): {str(outcome.data)[:200]}"
                )
                break
            outcome.ok = not outcome.error_kind
            if outcome.ok:
                break
            outcome.message = _error_text(outcome.data, response.status_code)
            retry_after = parse_retry_after(response.headers)
        if outcome.error_kind != "transient" or not can_retry:
            break
        if outcome.attempts > retry.attempts:
            break
        n = outcome.attempts - 1
        delay = (
            min(retry.retry_after_cap, retry_after)
            if retry_after is not None
            else rng.uniform(0, min(retry.cap, retry.base * 2**n))
        )
        outcome.delays.append(delay)
        await sleep(delay)
    return _finish(operation, outcome, started)


def _error_text(data: Any, status: int) -> str:
    if isinstance(data, dict):
        for key in ("detail", "message", "error", "title"):
            if isinstance(data.get(key), str):
                return str(data[key])[:500]
    return f"The service answered HTTP {status}."


def _finish(operation: Operation, outcome: ToolOutcome, started: float) -> ToolOutcome:
    outcome.latency_ms = (time.perf_counter() - started) * 1000
    label = "succeeded" if outcome.ok else outcome.error_kind or "unknown"
    TOOL_CALLS.labels(outcome=label).inc()
    logger.info(
        "tool_called",
        operation=operation.operation_id,
        outcome=label,
        status_code=outcome.status_code,
        attempts=outcome.attempts,
        latency_ms=round(outcome.latency_ms, 1),
    )
    return outcome
