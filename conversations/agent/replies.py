"""Plain-language replies without a model: tool results, errors, questions for missing
arguments, greeting and help (SPEC §5).

``summarize_result`` reads arbitrary JSON. It knows a few common shapes by their keys (a
shipment: carrier / tracking_number / estimated_delivery; a discount code: code + valid; a
record with a status, an amount, items) and otherwise lists a few scalar fields, so it works
for any imported API, not only the demo shop. Tool output is untrusted: only values are echoed,
shortened, and nothing in it changes what the assistant does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from conversations.agent.extraction import property_category, split_words
from openapi_import.vocabulary import READ_VERB_WORDS

__all__ = [
    "ESCALATION_REPLY",
    "HUMAN_OFFER",
    "ask_for",
    "capabilities",
    "failure_reply",
    "failure_summary",
    "greeting",
    "help_text",
    "looks_internal",
    "offer_action",
    "offer_without_lookup",
    "parse_tool_output",
    "small_talk_reply",
    "summarize_result",
]

ESCALATION_REPLY = (
    "Of course. I'm passing this conversation to a member of our support team; "
    "they will join here shortly."
)
_MAX_VALUE = 120  # characters of any one echoed value
_LIST_SHOWN = 3

# Verbs that lead an operation's name: the read verbs of the shared vocabulary and the actions.
_VERBS = READ_VERB_WORDS | frozenset(
    {
        "create", "update", "delete", "cancel", "apply", "track", "add", "remove", "set",
        "post", "put", "patch", "issue", "send", "make", "redeem",
    }
)  # fmt: skip
_NOT_NOUNS = frozenset({"tracking", "status", "details", "detail", "info", "by", "for", "of"})
_ID_KEYS = ("number", "id", "code", "reference", "ref", "name", "slug")


# -- tool output ---------------------------------------------------------------------------------

_TOOL_OUTPUT_RE = re.compile(r"<tool_output\b([^>]*)>(.*?)</tool_output>", re.DOTALL)
_STATUS_ATTRIBUTE_RE = re.compile(r"\bstatus(?:_code)?\s*=\s*[\"']?(\d{3})")


def parse_tool_output(content: str | None) -> tuple[Any, int | None]:
    """``(result, status_code)`` from a tool message's content.

    Accepts plain JSON, the delimiter format ``<tool_output status="200">…</tool_output>``
    (attributes optional) and a ``{"status_code": 200, "data": …}`` wrapper, alone or combined.
    Text that is not JSON comes back as a string.
    """
    if content is None:
        return None, None
    status: int | None = None
    text = content.strip()
    match = _TOOL_OUTPUT_RE.search(text)
    if match:
        attribute = _STATUS_ATTRIBUTE_RE.search(match.group(1))
        status = int(attribute.group(1)) if attribute else None
        text = match.group(2).strip()
    try:
        result: Any = json.loads(text)
    except ValueError:
        return text, status
    if isinstance(result, Mapping) and _is_wrapper(result):
        code = result.get("status_code", result.get("status"))
        status = int(code) if isinstance(code, int) and not isinstance(code, bool) else status
        if "data" in result:
            result = result["data"]
        elif "body" in result:
            result = result["body"]
        else:
            result = result.get("error")
    return result, status


def _is_wrapper(value: Mapping[str, Any]) -> bool:
    code = value.get("status_code", value.get("status"))
    has_code = isinstance(code, int) and not isinstance(code, bool)
    known = {"status_code", "status", "data", "body", "error", "ok", "headers", "operation"}
    return has_code and set(value) <= known and bool({"data", "body", "error"} & set(value))


# -- results -------------------------------------------------------------------------------------


def summarize_result(
    operation: str,
    result: Any,
    *,
    status_code: int | None = None,
    arguments: Mapping[str, Any] | None = None,
) -> str:
    """A short, friendly reply from a tool's result (or its error)."""
    if (status_code is not None and status_code >= 400) or _is_error_body(result):
        return _error_reply(operation, result, status_code, arguments or {})
    if isinstance(result, list):
        return _list_reply(operation, result)
    if isinstance(result, Mapping):
        return _object_reply(operation, result, arguments)
    if result is None or result == "":
        return "Done." if not _is_read(operation) else "I didn't find anything."
    return f"Here is the result: {_short(result)}."


def _is_read(operation: str) -> bool:
    words = split_words(operation)
    return bool(words) and words[0] in READ_VERB_WORDS


def _noun(operation: str) -> str:
    """``getDiscountCode`` → "discount code", ``listRefunds`` → "refund"."""
    words = [w for w in split_words(operation) if w not in _VERBS and w not in _NOT_NOUNS]
    if not words:
        return "item"
    words[-1] = _singular(words[-1])
    return " ".join(words)


def _singular(word: str) -> str:
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith(("ss", "us")):
        return word[:-1]
    return word


def _plural(noun: str) -> str:
    if noun.endswith("y") and not noun.endswith(("ay", "ey", "oy")):
        return noun[:-1] + "ies"
    return noun + ("es" if noun.endswith(("s", "x", "ch", "sh")) else "s")


def _humanize(value: Any) -> str:
    return str(value).replace("_", " ")


def _short(value: Any) -> str:
    text = re.sub(r"\s+", " ", str(value)).strip()
    return text if len(text) <= _MAX_VALUE else text[: _MAX_VALUE - 1].rstrip() + "…"


def _sentence(text: str) -> str:
    text = text.strip()
    return text if not text or text[-1] in ".!?" else text + "."


def _money(amount: Any, currency: Any) -> str:
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        return _short(amount)
    text = f"{value:.2f}" if value == value.quantize(Decimal("0.01")) else str(value)
    return f"{text} {currency}" if currency else text


def _is_zero(amount: Any) -> bool:
    try:
        return Decimal(str(amount)) == 0
    except InvalidOperation:
        return False


def _when(value: Any) -> str:
    """ "2026-11-25" → "25 November 2026"; a timestamp gets its time of day too."""
    text = str(value)
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            day = date.fromisoformat(text)
            return f"{day.day} {day:%B %Y}"
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return f"{moment.day} {moment:%B %Y, %H:%M}"
    except ValueError:
        return _short(text)


def _identifier(obj: Mapping[str, Any], noun: str) -> tuple[str, Any] | None:
    """The key and value that name this record: ``number``, ``<noun>_number``, ``id``…"""
    base = noun.split()[-1] if noun else ""
    keys = [f"{base}_number", f"{base}_id", *_ID_KEYS]
    for key in keys:
        value = obj.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool) and value != "":
            return key, value
    return None


def _subject(operation: str, obj: Mapping[str, Any], arguments: Mapping[str, Any]) -> str:
    noun = _noun(operation)
    found = _identifier(obj, noun)
    if found is None:
        # A tracking result names its order by "order_number"; use that noun when present.
        for key, value in obj.items():
            words = split_words(str(key))
            if len(words) == 2 and words[1] in {"number", "id"} and isinstance(value, int | str):
                return f"{words[0].capitalize()} {value}"
        return f"The {noun}"
    key, value = found
    if key == "name":
        return _short(value)
    if key in ("number", "id"):
        # applyDiscountCode(order_number=1042) answers with the order: name it by the argument
        # that carried the same value rather than by the operation's noun.
        for argument, given in arguments.items():
            words = split_words(str(argument))
            if len(words) == 2 and words[1] == key and str(given) == str(value):
                return f"{words[0].capitalize()} {value}"
        if noun.replace(" ", "_") in obj:
            # The record holds a "discount_code": it is not the discount code itself, and
            # without the call's arguments its own kind is unknown.
            return f"#{value}"
    return f"{noun.capitalize()} {value}"


def _object_reply(
    operation: str, obj: Mapping[str, Any], arguments: Mapping[str, Any] | None = None
) -> str:
    arguments = arguments or {}
    if any(key in obj for key in ("carrier", "tracking_number", "estimated_delivery")):
        return _tracking_reply(operation, obj, arguments)
    if "code" in obj and ("valid" in obj or "invalid_reason" in obj):
        return _code_reply(obj)
    subject = _subject(operation, obj, arguments)
    sentences: list[str] = []
    status = obj.get("status") or obj.get("state")
    verb = (split_words(operation) or [""])[0]
    if isinstance(status, str) and status:
        if _is_read(operation):
            sentences.append(f"{subject} is {_humanize(status)}")
        elif verb and status.lower().startswith(verb[:5]):
            sentences.append(f"{subject} is now {_humanize(status)}")
        else:
            sentences.append(f"Done. {subject} is {_humanize(status)}")
    elif not _is_read(operation):
        sentences.append(f"Done: {subject[:1].lower() + subject[1:]} is updated")
    currency = obj.get("currency")
    code = obj.get("discount_code")
    if isinstance(code, str) and code:
        saved = obj.get("discount_amount")
        extra = f" (saving {_money(saved, currency)})" if saved and not _is_zero(saved) else ""
        sentences.append(f"Discount code {code} is applied{extra}")
    for key, label in (("total", "Total"), ("amount", "Amount"), ("balance", "Balance")):
        if key in obj and obj[key] is not None and not isinstance(obj[key], Mapping | list):
            sentences.append(f"{label}: {_money(obj[key], currency)}")
            break
    parent = _parent_reference(obj, _noun(operation))
    if parent:
        sentences.append(parent)
    refunded = obj.get("refunded_amount")
    if refunded is not None and not _is_zero(refunded):
        sentences.append(f"Refunded so far: {_money(refunded, currency)}")
    items = obj.get("items")
    if isinstance(items, list) and items:
        sentences.append("Items: " + _items(items))
    if len(sentences) <= 1:
        sentences.extend(_key_facts(obj, skip={"status", "state", "currency"}))
    if not sentences:
        return f"{subject}: nothing more to report."
    return " ".join(_sentence(s) for s in sentences)


def _parent_reference(obj: Mapping[str, Any], noun: str) -> str | None:
    """ "On order 1044" for a refund that names its order."""
    base = noun.split()[-1] if noun else ""
    for key, value in obj.items():
        words = split_words(str(key))
        if (
            len(words) == 2
            and words[1] in {"number", "id"}
            and words[0] != base
            and isinstance(value, int | str)
        ):
            return f"It is for {words[0]} {value}"
    return None


def _items(items: Sequence[Any]) -> str:
    shown = []
    for item in items[:_LIST_SHOWN]:
        if isinstance(item, Mapping):
            name = item.get("name") or item.get("title") or item.get("sku") or "item"
            quantity = item.get("quantity") or item.get("qty")
            shown.append(f"{quantity} x {_short(name)}" if quantity else _short(name))
        else:
            shown.append(_short(item))
    more = len(items) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def _key_facts(obj: Mapping[str, Any], *, skip: set[str]) -> list[str]:
    facts = []
    for key, value in obj.items():
        if key in skip or value is None or isinstance(value, Mapping | list) or value == "":
            continue
        facts.append(f"{_humanize(key)}: {_short(value)}")
        if len(facts) == 4:
            break
    return ["Here is what I found: " + "; ".join(facts)] if facts else []


def _tracking_reply(operation: str, obj: Mapping[str, Any], arguments: Mapping[str, Any]) -> str:
    subject = _subject(operation, obj, arguments)
    carrier = obj.get("carrier")
    status = obj.get("status") or obj.get("shipment_status")
    if obj.get("shipped") is False or not (carrier or obj.get("tracking_number")):
        order_status = obj.get("order_status")
        state = f" (it is {_humanize(order_status)})" if order_status else ""
        return f"{subject} hasn't shipped yet{state}. I'll have tracking details once it leaves."
    sentences = []
    with_carrier = f" with {_short(carrier)}" if carrier else ""
    if status:
        sentences.append(f"{subject} is {_humanize(status)}{with_carrier}")
    else:
        sentences.append(f"{subject} has shipped{with_carrier}")
    if obj.get("tracking_number"):
        sentences.append(f"Tracking number: {_short(obj['tracking_number'])}")
    if obj.get("delivered_at"):
        sentences.append(f"Delivered on {_when(obj['delivered_at'])}")
    elif obj.get("estimated_delivery"):
        sentences.append(f"Estimated delivery: {_when(obj['estimated_delivery'])}")
    events = obj.get("events")
    if isinstance(events, list) and events and isinstance(events[-1], Mapping):
        latest = events[-1]
        what = latest.get("description") or latest.get("status")
        where = f" in {_short(latest['location'])}" if latest.get("location") else ""
        at = f" ({_when(latest['at'])})" if latest.get("at") else ""
        if what:
            sentences.append(f"Latest update: {_short(what)}{where}{at}")
    return " ".join(_sentence(s) for s in sentences)


def _code_reply(obj: Mapping[str, Any]) -> str:
    code = _short(obj["code"])
    kind, value = obj.get("kind"), obj.get("value")
    if kind == "percent" and value is not None:
        gives = f"{_plain_number(value)}% off"
    elif value is not None:
        gives = f"{_money(value, obj.get('currency'))} off"
    else:
        gives = ""
    description = obj.get("description")
    detail = gives or (_short(description) if description else "")
    if obj.get("valid") is False:
        why = obj.get("invalid_reason")
        return f"Code {code} can't be used right now" + (
            f": it is {_humanize(why)}." if why else "."
        )
    expiry = f" until {_when(obj['expires_at'])}" if obj.get("expires_at") else ""
    return f"Code {code} is valid{expiry}" + (f": {detail}." if detail else ".")


def _plain_number(value: Any) -> str:
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return _short(value)
    return str(int(number)) if number == number.to_integral_value() else str(number.normalize())


def _list_reply(operation: str, items: Sequence[Any]) -> str:
    plural = _plural(_noun(operation))
    if not items:
        return f"I didn't find any {plural}."
    if len(items) == 1:
        one = items[0]
        if isinstance(one, Mapping):
            return "I found one: " + _object_reply("get_" + _noun(operation).replace(" ", "_"), one)
        return f"I found one: {_short(one)}."
    shown = [_list_entry(operation, item) for item in items[:_LIST_SHOWN]]
    more = len(items) - len(shown)
    tail = f", and {more} more" if more > 0 else ""
    return f"I found {len(items)} {plural}: " + "; ".join(shown) + tail + "."


def _list_entry(operation: str, item: Any) -> str:
    if not isinstance(item, Mapping):
        return _short(item)
    noun = _noun(operation)
    found = _identifier(item, noun)
    label = f"{noun} {found[1]}" if found and found[0] != "name" else ""
    if found and found[0] == "name":
        label = _short(found[1])
    facts = []
    if isinstance(item.get("status"), str):
        facts.append(_humanize(item["status"]))
    for key in ("total", "amount"):
        if key in item and item[key] is not None:
            facts.append(_money(item[key], item.get("currency")))
            break
    if not label:
        return ", ".join(facts) or _short(json.dumps(item, default=str))
    return label + (f" ({', '.join(facts)})" if facts else "")


# -- errors --------------------------------------------------------------------------------------


def _is_error_body(result: Any) -> bool:
    if not isinstance(result, Mapping) or not result:
        return False
    keys = set(result)
    message = result.get("detail") or result.get("error")
    return bool(message) and keys <= {"detail", "error", "code", "message", "title", "type"}


def _error_text(result: Any) -> str:
    if isinstance(result, str):
        return _short(result)
    if not isinstance(result, Mapping):
        return ""
    for key in ("detail", "message", "error", "title"):
        value = result.get(key)
        if isinstance(value, str) and value:
            return _short(value)
        if isinstance(value, Mapping):
            nested = _error_text(value)
            if nested:
                return nested
        if isinstance(value, list) and value:
            first = value[0]
            return _short(first.get("msg", first) if isinstance(first, Mapping) else first)
    return ""


def _error_reply(
    operation: str, result: Any, status: int | None, arguments: Mapping[str, Any]
) -> str:
    detail = _error_text(result)
    if looks_internal(detail):
        detail = ""  # an exception's text or an address is for staff, never the customer
    noun = _noun(operation)
    if status == 404 and isinstance(result, Mapping) and result.get("code") == "not_your_order":
        # Ownership refused upstream (docs/identity.md): say so, not "not found".
        return f"{detail} I can only act on orders of the verified customer."
    if status == 404:
        found = re.match(r"^(.*?)\s+(?:was\s+|is\s+)?not\s+found\.?$", detail, re.IGNORECASE)
        if found:
            what = found.group(1)
            what = what[:1].lower() + what[1:] if what[1:2].islower() or what[1:2] == " " else what
            return f"I couldn't find {what}. Could you check the details?"
        value = _argument_for(noun, arguments)
        target = f"{noun} {value}" if value is not None else f"that {noun}"
        return f"I couldn't find {target}. Could you check the details?"
    if status in (401, 403):
        return (
            "I'm not able to access that right now, so I'll pass this on to a member of our "
            "support team."
        )
    if status == 429 or (status is not None and status >= 500):
        return (
            "The system I need isn't responding right now. Please try again in a moment, or "
            "ask for a human and our team will help."
        )
    if status == 409:
        return _sentence(detail) if detail else f"That can't be done with this {noun} right now."
    if detail:
        return _sentence(f"That didn't go through: {detail}")
    return "That didn't go through. Could you check the details and try again?"


HUMAN_OFFER = "Would you like to talk to a human? Use the button below, or just say so."

# What must never reach a customer: tracebacks, exception names, errno texts, addresses with a
# port, IP addresses, socket tuples, file paths of source code.
_INTERNAL_RE = re.compile(
    r"Traceback \(most recent call last\)"
    r"|File \"[^\"]+\", line \d+"
    r"|(?-i:\b[A-Z]\w*(?:Error|Exception)\b)"
    r"|\[Errno -?\d+\]|\bErrno\b"
    r"|\bconnect call failed\b|\bconnection refused\b|\bfetch failed\b"
    r"|\(\s*'[^']*'\s*,\s*\d{2,5}\s*\)"
    r"|\b(?:\d{1,3}\.){3}\d{1,3}\b"
    r"|\[[0-9a-f:]*:[0-9a-f:]*\]"
    r"|\b[a-z][\w.-]*:\d{2,5}\b"
    r"|\blocalhost\b"
    r"|\.py\b",
    re.IGNORECASE,
)


def looks_internal(text: str) -> bool:
    """Whether ``text`` carries internal detail (exception text, host, port, traceback)."""
    return bool(text) and bool(_INTERNAL_RE.search(text))


def failure_summary(operation: str, error_kind: str) -> str:
    """The tool-result line of a call the service failed: what happened, without detail."""
    if error_kind == "auth":
        return f"Couldn't {_verb_phrase(operation)}: access to the service was refused."
    if error_kind == "transient":
        return f"Couldn't {_verb_phrase(operation)}: the service isn't responding."
    return f"Couldn't {_verb_phrase(operation)}: something went wrong on our side."


def failure_reply(
    operation: str,
    *,
    error_kind: str,
    arguments: Mapping[str, Any] | None = None,
    is_read: bool = True,
    escalating: bool = False,
) -> str:
    """The apology for a call the service failed (unreachable, timed out, 5xx, refused our
    access, unreadable answer): honest about what is known, never "done" or "nothing found",
    and with the offer of a human, or the news that one is on the way."""
    noun = _noun(operation)
    value = _argument_for(noun, arguments or {})
    target = f"{noun} {value}" if value is not None else f"the {noun}"
    if error_kind == "auth":
        why = "I'm not able to access the system I need right now"
    elif error_kind == "transient":
        why = "the system I need isn't responding right now"
    else:
        why = "something went wrong on our side"
    if is_read:
        first = f"Sorry, I couldn't {_verb_phrase(operation, target)}: {why}."
    else:
        # A write that timed out may still have happened upstream: say what is known.
        first = (
            f"Sorry, I couldn't {_verb_phrase(operation, target)}: {why}, and I can't confirm "
            "that anything was changed."
        )
    if escalating:
        return f"{first} I'm asking a member of our support team to help."
    return f"{first} Please try again in a moment. {HUMAN_OFFER}"


def _verb_phrase(operation: str, target: str = "") -> str:
    """``getOrder`` → "look up the order", ``cancelOrder`` → "cancel order 1042"."""
    words = split_words(operation)
    verb = words[0] if words else ""
    target = target or f"the {_noun(operation)}"
    if verb in {"get", "list", "search", "find", "check", "show", "read", "fetch", "retrieve"}:
        return f"look up {target}"
    if verb in {"create", "add", "post", "make", "issue", "send"}:
        verb = "create" if verb in ("post", "make") else verb
        return f"{verb} {target.replace('the ', 'a ', 1)}"
    if verb and verb in _VERBS:
        return f"{verb} {target}"
    return f"complete that for {target}" if target else "complete that"


def _argument_for(noun: str, arguments: Mapping[str, Any]) -> Any:
    base = noun.split()[-1] if noun else ""
    for key in (f"{base}_number", f"{base}_id", base, "number", "id", "code"):
        if key in arguments and not isinstance(arguments[key], Mapping | list):
            return arguments[key]
    return None


# -- questions about an action --------------------------------------------------------------------

# Order states in which an order has not left yet, has left, or is closed. Generic words, not the
# demo shop's: an imported shop with other states gets the plain offer.
_NOT_SHIPPED = frozenset(
    {
        "pending", "paid", "processing", "new", "open", "created", "placed", "confirmed",
        "unpaid", "on_hold", "awaiting_payment", "unfulfilled", "authorized", "received",
    }
)  # fmt: skip
_SHIPPED = frozenset(
    {
        "shipped",
        "delivered",
        "in_transit",
        "out_for_delivery",
        "fulfilled",
        "completed",
        "dispatched",
    }
)
_CLOSED = frozenset({"cancelled", "canceled", "refunded", "voided", "closed"})
_VERB_PHRASES = {
    "cancel": "cancel it",
    "refund": "request a refund",
    "apply": "apply it",
    "update": "make that change",
}
_APPROVAL_NOTE = "You'll see exactly what I'd do and approve it first."


def offer_action(action: str, result: Any, *, status_code: int | None = None) -> str:
    """What a lookup says about doing ``action`` (a concept: cancel, refund, apply, update), and
    an offer to do it, after a question such as "could I cancel order 1042?". Nothing is done
    until the customer asks. Empty when the lookup failed (its error reply says enough)."""
    if (status_code is not None and status_code >= 400) or _is_error_body(result):
        return ""
    if isinstance(result, list) and len(result) == 1:
        result = result[0]
    if action == "apply" and isinstance(result, Mapping) and "valid" in result:
        if result.get("valid") is False:
            return ""  # the code reply says why it can't be used
        return "Would you like me to apply it to an order? Just tell me which one."
    state = ""
    if isinstance(result, Mapping):
        status = result.get("status") or result.get("state") or result.get("order_status")
        state = str(status).lower() if isinstance(status, str) else ""
    if action == "cancel":
        if state in _CLOSED:
            return f"It is {_humanize(state)} already, so there is nothing to cancel."
        if state in _SHIPPED:
            return (
                "It has already left us, so it can't be cancelled any more; once it is "
                "delivered I can help with a refund."
            )
        if state in _NOT_SHIPPED:
            return (
                "It hasn't shipped yet, so it can still be cancelled. Would you like me to cancel "
                f"it? {_APPROVAL_NOTE}"
            )
    if action == "refund" and isinstance(result, Mapping):
        refundable = result.get("refundable_amount")
        currency = result.get("currency")
        if state in _CLOSED and state != "refunded":
            return f"It is {_humanize(state)}, so there is nothing to refund."
        if refundable is not None and not _is_zero(refundable):
            return (
                f"Up to {_money(refundable, currency)} can be refunded. Would you like me to "
                f"request a refund? {_APPROVAL_NOTE}"
            )
        if state in _NOT_SHIPPED:
            return (
                "It hasn't shipped yet, so there is nothing to refund; it can be cancelled "
                "instead. Would you like me to cancel it?"
            )
        if state == "refunded" or refundable is not None:
            return "There is nothing left to refund on it."
    phrase = _VERB_PHRASES.get(action, "go ahead")
    return f"Would you like me to {phrase}? {_APPROVAL_NOTE}"


def offer_without_lookup(action: str, operation: str, description: str = "") -> str:
    """The answer to a question about an action when nothing can be looked up first: what the
    operation does, and an offer."""
    summary = capabilities([(operation, description)])
    what = f" ({summary[0]})" if summary else ""
    phrase = _VERB_PHRASES.get(action, "go ahead")
    return f"Yes, I can do that for you{what}. Would you like me to {phrase}? {_APPROVAL_NOTE}"


# -- questions, greeting, help -------------------------------------------------------------------

_QUESTIONS = {
    "number": "Which order number is it about?",
    "email": "What email address did you use for your orders?",
    "code": "Which discount code would you like to use?",
    "money": "How much is it about?",
    "date": "Which date do you mean?",
    "reason": "Could you tell me briefly why?",
    "currency": "Which currency is it in?",
}
_PHRASES = {
    "number": "the order number",
    "email": "your email address",
    "code": "the discount code",
    "money": "the amount",
    "date": "the date",
    "reason": "the reason",
    "currency": "the currency",
}


def _missing_category(path: str) -> str | None:
    return property_category(path.rsplit(".", 1)[-1])


def ask_for(missing: Sequence[str], operation: str) -> str:
    """A question for the arguments ``missing`` (dotted paths) of ``operation``."""
    if not missing:
        return "Could you tell me a bit more?"
    noun = _noun(operation)
    if len(missing) == 1:
        category = _missing_category(missing[0])
        if category == "number":
            return f"Which {noun if 'order' in noun else 'order'} number is it about?"
        if category == "money" and "refund" in operation.lower():
            return "How much would you like refunded?"
        if category == "reason" and "refund" in operation.lower():
            return "Could you tell me briefly why you'd like the refund?"
        if category in _QUESTIONS:
            return _QUESTIONS[category]
        return f"Could you tell me the {_field_label(missing[0])}?"
    labels = [
        _PHRASES.get(_missing_category(path) or "", f"the {_field_label(path)}") for path in missing
    ]
    joined = ", ".join(labels[:-1]) + f" and {labels[-1]}"
    verb = (split_words(operation) or ["do"])[0]
    return f"To {verb} the {noun} I need {joined}. Could you give me those?"


def _field_label(path: str) -> str:
    return " ".join(split_words(path.rsplit(".", 1)[-1])) or path


def capabilities(descriptions: Sequence[tuple[str, str]]) -> list[str]:
    """One short line per tool ``(name, description)``: the description's first sentence (its
    summary), lower-cased, or the operation name in words."""
    lines = []
    for name, description in descriptions:
        first = re.split(r"(?<=[.!?])\s+|\n", description.strip(), maxsplit=1)[0].strip(" .")
        line = first or " ".join(split_words(name))
        line = line[:1].lower() + line[1:] if line[1:2].islower() else line
        if line and line not in lines:
            lines.append(line)
    return lines


def help_text(descriptions: Sequence[tuple[str, str]], *, understood: bool = True) -> str:
    """What the assistant can do, from the tools' descriptions."""
    lines = capabilities(descriptions)
    opener = "I can help with" if understood else "I'm not sure I understood. I can help with"
    if not lines:
        return (
            "I'm not sure I understood. I can pass you to a member of our support team if you "
            "ask for a human."
        )
    listed = "; ".join(lines[:8])
    return (
        f"{opener}: {listed}. You can also ask for a human at any time. What would you like to do?"
    )


def greeting(descriptions: Sequence[tuple[str, str]] = ()) -> str:
    lines = capabilities(descriptions)
    if not lines:
        return "Hi! How can I help you today?"
    return f"Hi! Here is what I can do: {'; '.join(lines[:6])}. What can I do for you?"


def small_talk_reply(text: str, descriptions: Sequence[tuple[str, str]] = ()) -> str:
    lowered = text.lower()
    if re.search(r"\b(?:thanks|thank|thx|ty|cheers)\b", lowered):
        return "You're welcome! Is there anything else I can help with?"
    if re.search(r"\b(?:bye|goodbye)\b", lowered):
        return "Goodbye, and have a nice day!"
    return greeting(descriptions)
