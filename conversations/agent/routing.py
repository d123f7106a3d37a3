"""Which agent and which tool a customer's message is for, without a model (SPEC §4, §5).

Text is reduced to *concepts*: lower-cased words without stop words, crudely stemmed
(-s/-es/-ies, -ing, -ed, a final -e, a doubled final consonant) and folded through a synonyms
table ("where", "shipping", "parcel" → ``track``). A tool scores by the concepts it shares with
the message, weighted by where they occur (operationId words count three times as much as
description words) and by rarity across the tools (inverse document frequency, so "order", which
every shop tool mentions, decides little), plus bonuses for entity fit (a code-like token favours
tools with a code parameter, an amount favours tools with an amount) and for required arguments
the message can fill. An agent scores by its best tool plus its own name and description.

Everything is deterministic: ties are broken by name. See docs/offline-backend.md.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from conversations.agent.extraction import (
    Entities,
    extract_entities,
    fill_arguments,
    property_category,
    split_words,
)
from conversations.llm.types import ToolSpec
from openapi_import.vocabulary import READ_VERB_WORDS

__all__ = [
    "TOOL_THRESHOLD",
    "AgentProfile",
    "RouteDecision",
    "ToolScore",
    "action_asked_about",
    "concepts",
    "is_actionable",
    "is_new_request",
    "is_read_tool",
    "is_small_talk",
    "mood",
    "rank_tools",
    "route",
    "score_tools",
    "split_intents",
    "stem",
    "wants_human",
]

# A tool whose score is below this does not fit the message at all.
TOOL_THRESHOLD = 1.0
# An agent needs this much to be chosen without asking.
AGENT_THRESHOLD = 1.5
# The runner-up within this share of the best score makes the choice ambiguous.
CLOSE_RATIO = 0.8

NAME_WEIGHT = 3.0
DESCRIPTION_WEIGHT = 1.0
AGENT_NAME_WEIGHT = 1.5
AGENT_DESCRIPTION_WEIGHT = 1.0
COVERAGE_WEIGHT = 1.0
FILL_WEIGHT = 1.0
READ_PRIOR = 0.1
MOOD_BONUS = 1.0
STICKY_BONUS = 0.25
ENTITY_BONUS = {"code": 2.0, "money": 2.0, "email": 1.5, "number": 0.5, "date": 0.5}

_STOP_WORDS = frozenset(
    {
        "a", "about", "am", "an", "and", "any", "are", "as", "at", "be", "been", "but", "by",
        "can", "could", "did", "do", "does", "doing", "for", "from", "get", "got", "had", "has",
        "have", "he", "her", "here", "him", "his", "how", "i", "if", "im", "in", "into", "is",
        "it", "its", "just", "let", "like", "me", "mine", "my", "need", "now", "of", "on", "one",
        "or", "our", "please", "pls", "s", "she", "so", "some", "still", "than", "that", "the",
        "their", "them", "then", "there", "these", "they", "this", "those", "to", "too", "us",
        "very", "want", "was", "we", "were", "what", "whats", "when", "which", "who", "why",
        "will", "with", "would", "you", "your", "yours", "also", "again", "e", "g", "eg", "d",
        "ll", "t", "ve", "re", "m", "it's", "use", "used", "read", "only", "not", "no", "up",
    }
)  # fmt: skip
# "use" and "up" are stop words on their own; "look up" and "use a code" are caught as phrases.

_SYNONYMS: dict[str, tuple[str, ...]] = {
    "track": (
        "track", "tracking", "where", "ship", "shipping", "shipment", "shipped", "deliver",
        "delivery", "delivered", "package", "parcel", "arrive", "arrival", "transit", "carrier",
        "courier", "dispatch", "dispatched", "en route", "whereabouts",
    ),
    "cancel": ("cancel", "cancellation", "cancelled", "canceled", "stop", "abort", "void"),
    "refund": ("refund", "reimburse", "reimbursement", "return", "chargeback", "repay"),
    "discount": ("discount", "coupon", "code", "promo", "voucher", "promotion"),
    "order": ("order", "purchase", "bought"),
    "lookup": (
        "check", "look", "lookup", "show", "view", "see", "find", "detail", "details", "info",
        "information",
    ),
    "list": ("list", "all", "history", "every"),
    "apply": ("apply", "applied", "applies", "redeem", "add", "enter", "using"),
    "valid": ("valid", "validity", "expire", "expired", "expiry", "work", "working"),
    "update": ("update", "change", "modify", "edit"),
    "human": (
        "human", "person", "someone", "somebody", "representative", "operator", "staff",
        "escalate", "escalation", "handoff",
    ),
    "email": ("email", "mail"),
}  # fmt: skip
_PHRASES = (
    (re.compile(r"\bmoney\s+back\b"), " refund "),
    (re.compile(r"\bsend\s+(?:it\s+)?back\b"), " return "),
    (re.compile(r"\blook(?:ing)?\s+up\b"), " lookup "),
    (re.compile(r"\buse\s+(?=(?:a|the|my|this|code|coupon|promo|voucher)\b)"), " apply "),
    (re.compile(r"\be-mail\b"), " email "),
)
_ACTION_CONCEPTS = frozenset(
    {"track", "cancel", "refund", "apply", "lookup", "list", "valid", "update", "human"}
)
# "I want a refund" asks for an action; "has my refund gone through?" asks about the state.
_REQUEST_WORDS = frozenset({"want", "need", "like", "please", "give", "request", "wish", "asap"})
# "Can you / could you / would you / will you cancel it?" is a polite imperative: a request.
_REQUEST_START_RE = re.compile(
    r"^\s*(?:please\s+)?(?:can|could|would|will)\s+(?:you|u|ya)\b", re.IGNORECASE
)
# "Can I / could I / may I ...", "is it possible ...", "am I able to ..." ask whether something
# can be done: a question, answered without doing it (SPEC §6), unless "please" makes it a
# request ("could I please get a refund?").
_INQUIRY_RES = tuple(
    re.compile(pattern, re.IGNORECASE)
    for pattern in (
        r"^\s*(?:(?:hi|hello|hey|so|and|ok|okay|um|hmm)\b[\s,!.]*)*(?:can|could|may|might)\s+"
        r"(?:i|we)\b",
        r"\b(?:is|would|will)\s+it\s+(?:be\s+)?possible\b",
        r"\b(?:am|are)\s+(?:i|we)\s+(?:able|allowed)\s+to\b",
        r"\bis\s+there\s+(?:a|any)\s+way\b",
        r"\b(?:if|whether)\s+(?:i|we)\s+(?:can|could|may|might)\b",
        r"\b(?:can|could|may)\s+(?:my|the|this|that|it|order|#?\d)[^?.!]*?\s+be\s+\w+(?:ed|en)\b",
        r"\b(?:cancell?able|refundable|returnable)\b",
        r"^\s*how\s+(?:do|can|could|would)\s+(?:i|we)\b",
    )
)
_FILLER_WORDS = frozenset(
    {
        "please", "pls", "kindly", "now", "ok", "okay", "oh", "so", "actually", "then", "also",
        "just", "yes", "yeah", "yep", "sure", "well", "hi", "hello", "hey", "and", "instead",
    }
)  # fmt: skip
_QUESTION_START_RE = re.compile(
    r"^\s*(?:what|whats|what's|where|wheres|where's|when|which|who|how|is|are|has|have|did|does"
    r"|do|was|were)\b",
    re.IGNORECASE,
)
_WRITE_VERBS = frozenset({"cancel", "refund", "apply", "update"})
_READ_CONCEPTS = frozenset({"lookup", "list", "track", "valid"})
_SMALL_TALK = frozenset(
    {
        "hello", "hi", "hey", "hiya", "howdy", "yo", "thanks", "thank", "thx", "ty", "cheers",
        "bye", "goodbye", "ok", "okay", "good", "morning", "afternoon", "evening", "great",
        "cool", "nice", "perfect", "awesome", "yes", "yeah", "sure", "no", "nope", "you", "there",
        "how", "are", "doing", "please", "much", "lot", "welcome", "day", "all",
    }
)  # fmt: skip
_ESCALATION_RES = tuple(
    re.compile(pattern, re.IGNORECASE)
    for pattern in (
        r"\b(?:talk|speak|chat|connect|transfer|put)\s+(?:me\s+)?(?:to|with|through to)\s+"
        r"(?:a\s+|an\s+|some\s+|the\s+|your\s+|real\s+|actual\s+|live\s+)*"
        r"(?:human|person|someone|somebody|agent|representative|operator|staff|people|manager"
        r"|support|customer service)",
        r"\b(?:real|actual|live)\s+(?:person|human|agent|people)\b",
        r"\b(?:human|agent|person|operator|representative)\s*,?\s+please\b",
        r"^\s*(?:human|agent|operator|representative)\s*[.!]*\s*$",
        r"\bsupport\s+staff\b",
        r"\bspeak\s+to\s+someone\b",
        r"\b(?:customer\s+service|customer\s+support)\s+(?:agent|rep|representative|person)\b",
        r"\bescalate\b",
    )
)


def stem(word: str) -> str:
    """Crude suffix stripping: enough to meet "orders"/"order", "cancelled"/"cancel",
    "tracking"/"track"; the stems only need to be consistent, not words."""
    if len(word) <= 3:
        return word
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("sses") or word.endswith(("ches", "shes", "xes", "zes")):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    if word.endswith("ing") and len(word) >= 6:
        word = word[:-3]
    elif word.endswith("ed") and len(word) >= 5:
        word = word[:-2]
    if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "sz":
        word = word[:-1]
    if len(word) > 3 and word.endswith("e"):
        word = word[:-1]
    return word


def _build_synonyms() -> dict[str, str]:
    table: dict[str, str] = {}
    for concept, words in _SYNONYMS.items():
        for word in words:
            table[word] = concept
            table.setdefault(stem(word), concept)
    return table


_CONCEPT_OF = _build_synonyms()


def concepts(text: str) -> list[str]:
    """The concepts of ``text`` in order (duplicates kept): stop words and bare numbers are
    dropped, each word is folded through the synonyms table, raw form first, then its stem."""
    lowered = text.lower().replace("\u2019", "'")
    for pattern, replacement in _PHRASES:
        lowered = pattern.sub(replacement, lowered)
    out: list[str] = []
    for word in re.findall(r"[a-z0-9]+(?:'[a-z]+)?", lowered):
        word = word.replace("'", "")
        if word in _STOP_WORDS or word.isdigit() or len(word) < 2:
            continue
        if word in _CONCEPT_OF:
            out.append(_CONCEPT_OF[word])
            continue
        stemmed = stem(word)
        out.append(_CONCEPT_OF.get(stemmed, stemmed))
    return out


def wants_human(text: str) -> bool:
    """Whether the customer asks for a person ("talk to a human", "real person", "agent
    please", "support staff", "speak to someone")."""
    return any(pattern.search(text) for pattern in _ESCALATION_RES)


def mood(text: str) -> str | None:
    """``"request"`` when the customer asks for something to be done, ``"question"`` when they
    ask about a state or whether something can be done, None when the wording does not say.

    "Can you / could you / would you / please" + verb, "I want / I'd like / I need", and a
    leading imperative ("cancel order 1042", "yes please cancel it") are requests. "Can I /
    could I / may I", "is it possible", "am I able to", "is there a way", "I wonder if I could",
    and questions about a state ("where is", "has my refund...", "check 1042") are questions.
    An inquiry with "please" in it is a request ("could I please get a refund?").
    """
    tokens = re.findall(r"[a-z]+", text.lower().replace("\u2019", "'"))
    words = set(tokens)
    if any(pattern.search(text) for pattern in _INQUIRY_RES) and not words & {"please", "pls"}:
        return "question"
    # An imperative says it too: "refund order 1044" asks for a refund, "check 1042" asks about.
    leading = next((t for t in tokens if t not in _FILLER_WORDS), "")
    verb = _CONCEPT_OF.get(leading) or _CONCEPT_OF.get(stem(leading))
    request = (
        bool(words & _REQUEST_WORDS) or bool(_REQUEST_START_RE.match(text)) or verb in _WRITE_VERBS
    )
    question = bool(_QUESTION_START_RE.match(text)) or "status" in words or verb in _READ_CONCEPTS
    if request and not question:
        return "request"
    if question and not request:
        return "question"
    return None


def action_asked_about(text: str) -> str | None:
    """The action a question asks about ("could I cancel order 1042?" → ``"cancel"``), or None
    when the text is not a question or names no action that changes something."""
    if mood(text) != "question":
        return None
    return next((c for c in concepts(text) if c in _WRITE_VERBS), None)


def is_read_tool(tool: ToolSpec) -> bool:
    """Whether a tool only reads, judged by its name's first word (get, list, search, ...)."""
    words = split_words(tool.name)
    return bool(words) and words[0] in READ_VERB_WORDS


def is_new_request(text: str, tools: Sequence[ToolSpec], *, operation: str | None = None) -> bool:
    """Whether ``text``, sent after the agent asked the customer for something, is a new request
    rather than the answer: a request for a human, small talk, or a message that says what to
    do (a request or a question with an action word) for another tool than ``operation``.
    "it arrived broken" answers "why?"; "where is order 1043?" does not."""
    if wants_human(text) or is_small_talk(text):
        return True
    if mood(text) is None or not is_actionable(text):
        return False
    if operation is None:
        return True
    ranked = rank_tools(text, tools)
    return not ranked or ranked[0].score < TOOL_THRESHOLD or ranked[0].name != operation


def is_small_talk(text: str) -> bool:
    """Greetings, thanks and goodbyes with nothing else in them ("hello", "thanks a lot!")."""
    words = re.findall(r"[a-z]+", text.lower())
    return bool(words) and all(w in _SMALL_TALK or w in _STOP_WORDS for w in words)


# -- splitting a message into intents -------------------------------------------------------------

_STRONG_SPLIT_RE = re.compile(
    r"\s*;\s*|\s*\n+\s*|(?<=[.!?])\s+(?=[A-Za-z])"
    r"|,?\s+(?:and\s+)?then\s+|,\s*(?:and\s+)?also\s+|\s+and\s+also\s+",
    re.IGNORECASE,
)
_AND_SPLIT_RE = re.compile(r",?\s+(?:and|plus)\s+|\s*&\s*", re.IGNORECASE)
_LEADING_CONNECTOR_RE = re.compile(r"^(?:(?:and|then|also|plus|after that)\b[\s,]*)+", re.I)


def is_actionable(text: str) -> bool:
    """Whether the text asks for something (has an action word: track, cancel, check...)."""
    return any(concept in _ACTION_CONCEPTS for concept in concepts(text))


def _has_entity(text: str) -> bool:
    return not extract_entities(text).is_empty()


def split_intents(text: str) -> list[str]:
    """The separate requests in one message, in order.

    A message splits at ``;``, line breaks, sentence ends, "then" and "also" when at least two
    of the parts ask for something (contain an action word such as track, cancel, refund, apply,
    check); parts that ask for nothing ("Hi.", "my email is ...") stay with their neighbour.
    "and" splits only when the left part already names its object and the right part has its
    own action ("cancel order 1042 and apply WELCOME10 to 1043"); so "cancel and refund order
    1042" stays one intent and the strongest tool wins. Messages under four words never split.
    """
    stripped = text.strip()
    if len(stripped.split()) < 4:
        return [stripped] if stripped else []
    parts = _glue(stripped, _pieces(stripped, _STRONG_SPLIT_RE))
    intents: list[str] = []
    for start, end in parts:
        intents.extend(_split_on_and(stripped[start:end]))
    cleaned = [_clean(intent) for intent in intents]
    return [intent for intent in cleaned if intent] or [stripped]


def _pieces(text: str, pattern: re.Pattern[str]) -> list[tuple[int, int]]:
    spans, start = [], 0
    for match in pattern.finditer(text):
        if match.start() > start:
            spans.append((start, match.start()))
        start = match.end()
    if start < len(text):
        spans.append((start, len(text)))
    return spans


def _glue(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Joins every piece that asks for nothing to the next piece (the last one to the previous),
    restoring the original text between them."""
    merged: list[tuple[int, int]] = []
    pending: int | None = None
    for start, end in spans:
        begin = pending if pending is not None else start
        if is_actionable(text[start:end]):
            merged.append((begin, end))
            pending = None
        else:
            pending = begin
    if pending is not None:
        if merged:
            merged[-1] = (merged[-1][0], len(text))
        else:
            merged.append((pending, len(text)))
    return merged


def _split_on_and(text: str) -> list[str]:
    for match in _AND_SPLIT_RE.finditer(text):
        left, right = text[: match.start()], text[match.end() :]
        if is_actionable(left) and _has_entity(left) and is_actionable(right):
            return [left, *_split_on_and(right)]
    return [text]


def _clean(intent: str) -> str:
    intent = intent.strip().strip(",;").strip()
    return _LEADING_CONNECTOR_RE.sub("", intent).strip()


# -- scoring tools ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ToolScore:
    """A tool's score and its parts, for the reason shown in replays."""

    name: str
    score: float
    lexical: float
    entity: float
    fill: float
    matched: tuple[str, ...]


@dataclass(frozen=True)
class _ToolDoc:
    tool: ToolSpec
    name_concepts: frozenset[str]
    description_concepts: frozenset[str]
    categories: frozenset[str]
    is_read: bool


def _doc(tool: ToolSpec) -> _ToolDoc:
    words = split_words(tool.name)
    return _ToolDoc(
        tool=tool,
        name_concepts=frozenset(concepts(" ".join(words))),
        description_concepts=frozenset(concepts(tool.description)),
        categories=frozenset(_categories(tool.parameters)),
        is_read=is_read_tool(tool),
    )


def _categories(schema: Mapping[str, Any], depth: int = 0) -> set[str]:
    found: set[str] = set()
    properties = schema.get("properties") if isinstance(schema, Mapping) else None
    if not isinstance(properties, Mapping) or depth > 3:
        return found
    for name, prop in properties.items():
        if not isinstance(prop, Mapping):
            continue
        category = property_category(str(name), prop)
        if category:
            found.add(category)
        for key in ("anyOf", "oneOf"):
            for member in prop.get(key) or ():
                found |= _categories(member, depth + 1)
        found |= _categories(prop, depth + 1)
    return found


def _idf(documents: Sequence[frozenset[str]]) -> dict[str, float]:
    total = len(documents)
    frequency: dict[str, int] = {}
    for document in documents:
        for concept in document:
            frequency[concept] = frequency.get(concept, 0) + 1
    return {concept: 1.0 + math.log(total / count) for concept, count in frequency.items()}


def _scoring_text(text: str, entities: Entities) -> str:
    """The part of the message that says what to do: a reason clause ("because it arrived
    broken") describes the problem, not the operation, so it does not vote."""
    if entities.reason:
        position = text.rfind(entities.reason)
        if position > 0:
            return text[:position]
    return text


def rank_tools(
    text: str,
    tools: Sequence[ToolSpec],
    *,
    context: Mapping[str, Any] | None = None,
    entities: Entities | None = None,
) -> list[ToolScore]:
    """Every tool's score with its parts, best first (ties by name)."""
    entities = entities if entities is not None else extract_entities(text)
    docs = [_doc(tool) for tool in tools]
    idf = _idf([doc.name_concepts | doc.description_concepts for doc in docs])
    query = set(concepts(_scoring_text(text, entities)))
    # An order number is itself a mention of an order ("check 1042").
    if entities.order_numbers:
        query.add("order")
    present = {
        category
        for category, values in (
            ("code", entities.codes),
            ("money", entities.amounts),
            ("email", entities.emails),
            ("number", entities.order_numbers),
            ("date", entities.dates),
        )
        if values
    }
    wording = mood(text)
    scores = [_score(doc, query, idf, present, wording, text, context, entities) for doc in docs]
    return sorted(scores, key=lambda s: (-s.score, s.name))


def _score(
    doc: _ToolDoc,
    query: set[str],
    idf: Mapping[str, float],
    present: set[str],
    wording: str | None,
    text: str,
    context: Mapping[str, Any] | None,
    entities: Entities,
) -> ToolScore:
    lexical = 0.0
    matched: list[str] = []
    for concept in sorted(query):
        if concept in doc.name_concepts:
            lexical += NAME_WEIGHT * idf.get(concept, 1.0)
            matched.append(concept)
        elif concept in doc.description_concepts:
            lexical += DESCRIPTION_WEIGHT * idf.get(concept, 1.0)
            matched.append(concept)
    entity = sum(ENTITY_BONUS[category] for category in present & doc.categories)
    if lexical + entity < TOOL_THRESHOLD:
        # Not a fit: the bonuses below must not lift an unrelated tool over the threshold.
        return ToolScore(doc.tool.name, round(lexical + entity, 4), lexical, entity, 0.0, ())
    fill = _fill_ratio(doc.tool, text, context, entities)
    coverage = len(query & doc.name_concepts) / len(doc.name_concepts) if doc.name_concepts else 0.0
    fits_mood = (wording == "question") == doc.is_read if wording else False
    total = (
        lexical
        + entity
        + FILL_WEIGHT * fill
        + COVERAGE_WEIGHT * coverage
        + (MOOD_BONUS if fits_mood else 0.0)
        # Between equals, reading is the safe guess: a write still waits for approval, but
        # asking the customer to approve something they did not ask for is a poor experience.
        + (READ_PRIOR if doc.is_read else 0.0)
    )
    return ToolScore(doc.tool.name, round(total, 4), lexical, entity, fill, tuple(matched))


def _fill_ratio(
    tool: ToolSpec, text: str, context: Mapping[str, Any] | None, entities: Entities
) -> float:
    required = _required_paths(tool.parameters)
    if not required:
        return 0.5
    result = fill_arguments(tool.parameters, text, context=context, entities=entities)
    missing = set(result.missing)
    remembered = set(result.from_context)
    # A value the customer just gave counts fully; one remembered from earlier, half.
    filled = sum(0.5 if path in remembered else 1.0 for path in required if path not in missing)
    return filled / len(required)


def _required_paths(schema: Mapping[str, Any], prefix: str = "") -> list[str]:
    properties = schema.get("properties") or {}
    paths: list[str] = []
    for name in schema.get("required") or ():
        prop = properties.get(name)
        if not isinstance(prop, Mapping):
            continue
        nested = prop if isinstance(prop.get("properties"), Mapping) else None
        if nested is not None and nested.get("required"):
            paths.extend(_required_paths(nested, f"{prefix}{name}."))
        else:
            paths.append(f"{prefix}{name}")
    return paths


def score_tools(
    text: str, tools: Sequence[ToolSpec], *, context: Mapping[str, Any] | None = None
) -> list[tuple[str, float]]:
    """``(tool name, score)`` best first, ties by name; a score under ``TOOL_THRESHOLD`` means
    the tool does not fit the message."""
    return [(s.name, s.score) for s in rank_tools(text, tools, context=context)]


# -- routing to an agent ------------------------------------------------------------------------


@dataclass
class AgentProfile:
    name: str
    description: str
    tools: list[ToolSpec] = field(default_factory=list)
    is_fallback: bool = False
    # Names of the tools that only read; None: judged by their names (``is_read_tool``).
    read_tools: frozenset[str] | None = None

    def reads(self, tool: ToolSpec) -> bool:
        return tool.name in self.read_tools if self.read_tools is not None else is_read_tool(tool)


@dataclass
class RouteDecision:
    agent: str | None
    scores: dict[str, float]
    clarification: str | None = None
    escalate: bool = False
    reason: str = ""
    tool: str | None = None  # the chosen agent's best tool, when one fits
    # A question ("could I cancel order 1042?"): the agent may only use its read tools, so it
    # answers and offers, and proposes nothing until the customer asks (SPEC §6).
    read_only: bool = False


def route(
    text: str,
    agents: Sequence[AgentProfile],
    *,
    context: Mapping[str, Any] | None = None,
) -> RouteDecision:
    """Picks the agent for one intent.

    An escalation request wins outright (``escalate=True``; ``agent`` is the fallback agent,
    whose escalation message applies, or None). An answer to the question an agent just asked
    (``context["asked"]["agent"]``, see ``is_new_request``) stays with that agent. A question
    (``mood``) is routed over read tools only and the decision is ``read_only``, as long as
    some read tool fits. Otherwise each agent scores its best tool plus its own name and
    description; ``context["agent"]``, the agent of the previous turn, gets a small bonus so
    follow-ups stay put. When nothing reaches ``AGENT_THRESHOLD``, small talk goes to the
    fallback agent and anything else gets a clarification; when the runner-up is within
    ``CLOSE_RATIO`` of the best, the clarification names both.
    """
    fallback = next((agent for agent in agents if agent.is_fallback), None)
    if wants_human(text):
        return RouteDecision(
            agent=fallback.name if fallback else None,
            scores={agent.name: 0.0 for agent in agents},
            escalate=True,
            reason="the customer asked for a human",
        )
    asked = context.get("asked") if context else None
    if isinstance(asked, Mapping):
        owner = next((agent for agent in agents if agent.name == asked.get("agent")), None)
        operation = asked.get("operation")
        operation = operation if isinstance(operation, str) else None
        if owner is not None and not is_new_request(text, owner.tools, operation=operation):
            return RouteDecision(
                agent=owner.name,
                scores={agent.name: 0.0 for agent in agents},
                reason="an answer to the agent's own question stays with that agent",
                tool=operation,
            )
    entities = extract_entities(text)
    read_only = mood(text) == "question"
    scores, best_tools = _agent_scores(text, agents, context, entities, read_only=read_only)
    if read_only and not any(best_tools.values()):
        # No read tool fits ("can I reset my password?" with only a write tool): route as usual;
        # the agent answers the question, and any write still waits for approval.
        read_only = False
        scores, best_tools = _agent_scores(text, agents, context, entities, read_only=False)
    decision = _decide(text, agents, context, scores, best_tools, fallback)
    decision.read_only = read_only and decision.agent is not None
    return decision


def _agent_scores(
    text: str,
    agents: Sequence[AgentProfile],
    context: Mapping[str, Any] | None,
    entities: Entities,
    *,
    read_only: bool,
) -> tuple[dict[str, float], dict[str, str | None]]:
    usable = {
        agent.name: [tool for tool in agent.tools if not read_only or agent.reads(tool)]
        for agent in agents
    }
    unique_tools = list({tool.name: tool for tools in usable.values() for tool in tools}.values())
    tool_scores = {
        s.name: s for s in rank_tools(text, unique_tools, context=context, entities=entities)
    }
    agent_docs = [frozenset(concepts(f"{agent.name} {agent.description}")) for agent in agents]
    agent_idf = _idf(agent_docs)
    query = set(concepts(_scoring_text(text, entities)))
    scores: dict[str, float] = {}
    best_tools: dict[str, str | None] = {}
    for agent in agents:
        fitting = [
            tool_scores[tool.name]
            for tool in usable[agent.name]
            if tool_scores[tool.name].score >= TOOL_THRESHOLD
        ]
        best = min(fitting, key=lambda s: (-s.score, s.name), default=None)
        best_tools[agent.name] = best.name if best else None
        if read_only and best is None and not agent.is_fallback:
            # Its description may match ("cancel an order"), but it has nothing to answer with.
            scores[agent.name] = 0.0
            continue
        own = _agent_text_score(agent, query, agent_idf)
        sticky = STICKY_BONUS if context and context.get("agent") == agent.name else 0.0
        scores[agent.name] = round((best.score if best else 0.0) + own + sticky, 4)
    return scores, best_tools


def _decide(
    text: str,
    agents: Sequence[AgentProfile],
    context: Mapping[str, Any] | None,
    scores: dict[str, float],
    best_tools: Mapping[str, str | None],
    fallback: AgentProfile | None,
) -> RouteDecision:
    ranked = sorted(agents, key=lambda agent: (-scores[agent.name], agent.name))
    if not ranked:
        return RouteDecision(agent=None, scores={}, reason="no agents are configured")
    top = ranked[0]
    previous = next(
        (agent for agent in agents if context and agent.name == context.get("agent")), None
    )
    if previous is not None and not is_actionable(text) and not is_small_talk(text):
        # "1042" or "ben@example.com" answers the previous turn's question.
        return RouteDecision(
            agent=previous.name,
            scores=scores,
            reason="a follow-up without an action of its own stays with the previous agent",
            tool=best_tools[previous.name],
        )
    if scores[top.name] < AGENT_THRESHOLD:
        return _nothing_fits(text, ranked, scores, fallback)
    rivals = [agent for agent in ranked[1:] if not agent.is_fallback]
    if not top.is_fallback and rivals and scores[rivals[0].name] >= CLOSE_RATIO * scores[top.name]:
        candidates = [top, rivals[0]]
        return RouteDecision(
            agent=None,
            scores=scores,
            clarification=_clarify(candidates),
            reason=(
                f"{top.name} ({scores[top.name]}) and {rivals[0].name} "
                f"({scores[rivals[0].name]}) are too close to choose"
            ),
        )
    return RouteDecision(
        agent=top.name,
        scores=scores,
        reason=f"best score {scores[top.name]}"
        + (f" via {best_tools[top.name]}" if best_tools[top.name] else " on its description"),
        tool=best_tools[top.name],
    )


def _agent_text_score(agent: AgentProfile, query: set[str], idf: Mapping[str, float]) -> float:
    name = set(concepts(agent.name))
    description = set(concepts(agent.description))
    score = 0.0
    for concept in query:
        if concept in name:
            score += AGENT_NAME_WEIGHT * idf.get(concept, 1.0)
        elif concept in description:
            score += AGENT_DESCRIPTION_WEIGHT * idf.get(concept, 1.0)
    return score


def _nothing_fits(
    text: str,
    ranked: Sequence[AgentProfile],
    scores: Mapping[str, float],
    fallback: AgentProfile | None,
) -> RouteDecision:
    if fallback is not None and (is_small_talk(text) or not concepts(text)):
        return RouteDecision(
            agent=fallback.name,
            scores=dict(scores),
            reason="small talk: nothing scored, so the fallback agent answers",
        )
    candidates = [agent for agent in ranked if not agent.is_fallback and scores[agent.name] > 0]
    if len(candidates) < 2:
        candidates = [agent for agent in ranked if not agent.is_fallback]
    if not candidates and fallback is not None:
        return RouteDecision(
            agent=fallback.name, scores=dict(scores), reason="only the fallback agent exists"
        )
    return RouteDecision(
        agent=None,
        scores=dict(scores),
        clarification=_clarify(candidates[:3]),
        reason="no agent scored high enough",
    )


def _clarify(candidates: Sequence[AgentProfile]) -> str:
    names = [agent.name for agent in candidates]
    if len(names) == 1:
        return f"I want to be sure I understand: is this about {names[0]}?"
    joined = ", ".join(names[:-1]) + f" or {names[-1]}"
    return f"I want to be sure I understand: is this about {joined}? Could you tell me a bit more?"
