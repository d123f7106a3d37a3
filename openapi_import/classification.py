"""Suggesting how risky an imported operation is, and who must approve it.

Owns the pure heuristics that turn a ``ParsedOperation`` into a ``Classification``: access level
(read / write / destructive), approval (none / user / staff), a confidence, a suggested agent
group and the parameters a customer must supply, with one human-readable reason per rule that
fired. The rules are documented in docs/openapi-import.md ("Classification rules"); the wording
lists live in ``ClassificationPolicy`` so a deployment can tune them. No Django, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from openapi_import.parsing.types import ParsedOperation
from openapi_import.vocabulary import READ_VERBS, AccessType, Approval, split_words

__all__ = [
    "ACCESS_LEVELS",
    "APPROVALS",
    "DEFAULT_POLICY",
    "Classification",
    "ClassificationPolicy",
    "classify",
    "split_words",
]

ACCESS_LEVELS: tuple[str, ...] = tuple(AccessType)
APPROVALS: tuple[str, ...] = tuple(Approval)
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH"})
_CONSEQUENTIAL = "x-openai-isConsequential"
_VERSION = re.compile(r"v?\d+([._-]\d+)*(beta\d*|alpha\d*)?", re.IGNORECASE)


@dataclass(frozen=True)
class Classification:
    access: AccessType
    approval: Approval
    confidence: float
    agent_group: str
    customer_parameters: tuple[str, ...]
    reasons: tuple[str, ...]
    # Properties that carry credentials: filled from the spec's upstream credentials, never by
    # the model (named credential parameters and the spec's apiKey security-scheme parameters).
    credential_parameters: tuple[str, ...] = ()


@dataclass(frozen=True)
class ClassificationPolicy:
    """Word lists driving ``classify``. Entries with ``_`` match consecutive words."""

    # Money leaves the business: staff must approve (on anything that is not a plain read).
    staff_words: tuple[str, ...] = (
        "refund",
        "chargeback",
        "transfer",
        "payout",
        "withdraw",
        "close_account",
        "reverse_payment",
        "credit_note",
    )
    destructive_words: tuple[str, ...] = (
        "delete",
        "remove",
        "destroy",
        "revoke",
        "terminate",
        "void",
        "cancel",
        "close",
        "purge",
        "erase",
        "wipe",
        "archive",
        "deactivate",
        "unsubscribe",
    )
    # Money changes hands on the customer's behalf: at least the customer approves.
    money_words: tuple[str, ...] = (
        "charge",
        "pay",
        "paid",
        "payment",
        "purchase",
        "capture",
        "buy",
    )
    read_words: tuple[str, ...] = READ_VERBS
    # Prefixes of action-style names (DynamoDB BatchGetItem, TransactGetItems, bulkGet...): the
    # verb is the word after them.
    action_prefixes: tuple[str, ...] = ("batch", "transact", "bulk", "multi")
    # Verbs that contradict "this POST only reads" wherever they appear.
    write_words: tuple[str, ...] = (
        "create",
        "add",
        "update",
        "set",
        "send",
        "submit",
        "upload",
        "import",
        "insert",
        "save",
        "replace",
        "modify",
        "edit",
        "assign",
        "invite",
        "approve",
        "reject",
        "execute",
        "run",
        "trigger",
        "start",
        "stop",
        "enable",
        "disable",
        "reset",
        "merge",
        "publish",
        "move",
        "copy",
        "rename",
        "lock",
        "unlock",
        "mark",
        "register",
        "subscribe",
        "generate",
        "apply",
        "confirm",
        "accept",
        "redeliver",
        "rerun",
        "retry",
        "mutation",
    )
    # Leading verbs that make something new: "create-remove-token" creates, it does not remove.
    constructive_words: tuple[str, ...] = (
        "create",
        "add",
        "generate",
        "insert",
        "register",
        "upload",
        "import",
        "invite",
        "send",
        "issue",
        "new",
        "restore",
        "undo",
        "unarchive",
        "reopen",
    )
    money_fields: tuple[str, ...] = (
        "amount",
        "refund",
        "price",
        "balance",
        "iban",
        "card_number",
        "cvv",
        "cvc",
        "routing_number",
        "bank_account",
    )
    # Never asked of the customer: filled by the server/integration or optional plumbing.
    server_parameters: tuple[str, ...] = (
        "api_key",
        "apikey",
        "key",
        "authorization",
        "access_token",
        "token",
        "client_id",
        "client_secret",
        "idempotency_key",
    )
    # Parameters (path, query, header, cookie) that carry credentials, matched ignoring case and
    # punctuation: never filled by the model, only from the spec's upstream credentials.
    credential_parameters: tuple[str, ...] = (
        "token",
        "api_key",
        "apikey",
        "key",
        "authorization",
        "proxy_authorization",
        "access_token",
        "auth_token",
        "id_token",
        "refresh_token",
        "session_token",
        "private_token",
        "client_secret",
        "x_api_key",
        "x_auth_token",
        "x_access_token",
        "x_amz_signature",
        "x_amz_security_token",
        "x_amz_credential",
        "x_goog_api_key",
    )
    pagination_parameters: tuple[str, ...] = (
        "page",
        "per_page",
        "page_size",
        "limit",
        "offset",
        "cursor",
        "page_token",
        "next_token",
        "starting_after",
        "ending_before",
    )
    ignored_parameters: tuple[str, ...] = ("format", "fields")
    group_synonyms: tuple[tuple[str, str], ...] = (
        ("orders", "orders"),
        ("order", "orders"),
        ("checkout", "orders"),
        ("checkouts", "orders"),
        ("cart", "orders"),
        ("carts", "orders"),
        ("payments", "billing"),
        ("payment", "billing"),
        ("refunds", "billing"),
        ("refund", "billing"),
        ("billing", "billing"),
        ("invoices", "billing"),
        ("invoice", "billing"),
        ("charges", "billing"),
        ("charge", "billing"),
        ("subscriptions", "billing"),
        ("subscription", "billing"),
        ("users", "accounts"),
        ("user", "accounts"),
        ("accounts", "accounts"),
        ("account", "accounts"),
        ("customers", "accounts"),
        ("customer", "accounts"),
        ("profile", "accounts"),
        ("profiles", "accounts"),
        ("me", "accounts"),
        ("products", "catalog"),
        ("product", "catalog"),
        ("catalog", "catalog"),
        ("items", "catalog"),
        ("item", "catalog"),
        ("inventory", "catalog"),
        ("tickets", "support"),
        ("ticket", "support"),
        ("support", "support"),
        ("helpdesk", "support"),
    )
    # Path segments that never name a resource (besides versions like v1, 2.0, 2010-04-01).
    skipped_segments: tuple[str, ...] = ("api", "apis", "rest", "public", "private", "internal")
    # Set True to require staff approval for staff words even on plain reads (GET /refunds).
    staff_words_on_reads: bool = False


DEFAULT_POLICY = ClassificationPolicy()


def _inflections(word: str) -> frozenset[str]:
    """Forms of a verb/noun we accept: delete -> deletes/deleted/deleting/deletion ..."""
    forms = {word, f"{word}s", f"{word}es", f"{word}ed", f"{word}ing", f"{word}er", f"{word}ers"}
    forms |= {f"{word}ment", f"{word}ments", f"{word}al", f"{word}als", f"{word}ation"}
    forms |= {f"{word}ion", f"{word}ions", f"{word}ations"}
    if word.endswith("e"):
        stem = word[:-1]
        forms |= {f"{word}d", f"{stem}ing", f"{stem}ion", f"{stem}ions", f"{stem}al"}
    if word[-1:] in "lrtp" and len(word) > 3:  # cancelled, transferred, stopped
        doubled = word + word[-1]
        forms |= {f"{doubled}ed", f"{doubled}ing", f"{doubled}ation"}
    if word.endswith("l"):  # cancellation
        forms.add(f"{word}lation")
    return frozenset(forms)


@dataclass(frozen=True)
class _Lexicon:
    """A policy word list compiled for matching: single words (any form) and word sequences."""

    singles: frozenset[str]
    base: frozenset[str]  # uninflected, for "is this the verb here" and field-name checks
    sequences: tuple[tuple[str, ...], ...]

    @classmethod
    def build(cls, entries: Iterable[str]) -> _Lexicon:
        singles: set[str] = set()
        base: set[str] = set()
        sequences: list[tuple[str, ...]] = []
        for entry in entries:
            words = tuple(entry.lower().split("_"))
            if len(words) > 1:
                sequences.append(words)
                continue
            singles |= _inflections(words[0])
            base.add(words[0])
        return cls(frozenset(singles), frozenset(base), tuple(sequences))

    def find(self, words: list[str], *, base_only: bool = False) -> list[str]:
        """Words of ``words`` matching the list (as written there), first occurrence order."""
        found: dict[str, None] = {}
        for word in words:
            if word in (self.base if base_only else self.singles):
                found[word] = None
        for sequence in self.sequences:
            size = len(sequence)
            if any(tuple(words[i : i + size]) == sequence for i in range(len(words) - size + 1)):
                found["_".join(sequence)] = None
        return list(found)


@dataclass(frozen=True)
class _Compiled:
    staff: _Lexicon
    destructive: _Lexicon
    money: _Lexicon
    read: _Lexicon
    write: _Lexicon
    constructive: _Lexicon
    money_fields: _Lexicon
    excluded_parameters: frozenset[str]
    credential_parameters: frozenset[str]
    action_prefixes: frozenset[str]
    synonyms: dict[str, str]
    skipped_segments: frozenset[str]


@lru_cache(maxsize=16)
def _compile(policy: ClassificationPolicy) -> _Compiled:
    excluded = {
        _squash(p)
        for p in (
            *policy.server_parameters,
            *policy.pagination_parameters,
            *policy.ignored_parameters,
        )
    }
    return _Compiled(
        staff=_Lexicon.build(policy.staff_words),
        destructive=_Lexicon.build(policy.destructive_words),
        money=_Lexicon.build(policy.money_words),
        read=_Lexicon.build(policy.read_words),
        write=_Lexicon.build(policy.write_words),
        constructive=_Lexicon.build(policy.constructive_words),
        money_fields=_Lexicon.build(policy.money_fields),
        excluded_parameters=frozenset(excluded),
        credential_parameters=frozenset(_squash(p) for p in policy.credential_parameters),
        action_prefixes=frozenset(policy.action_prefixes),
        synonyms=dict(policy.group_synonyms),
        skipped_segments=frozenset(policy.skipped_segments),
    )


def _squash(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


@dataclass
class _Wording:
    """Words of an operation by source, plus the positions where an action verb usually sits."""

    sources: dict[str, list[str]]
    leading_words: list[str]  # first word of each operationId part and of the summary
    action_words: list[str]  # leading words, last words of id parts, last path segment

    @classmethod
    def of(cls, op: ParsedOperation, prefixes: frozenset[str] = frozenset()) -> _Wording:
        literal_segments = [
            s for s in op.path.split("/") if s and not (s.startswith("{") and s.endswith("}"))
        ]
        # Path parameter names ({cancelReason}) are not wording about the action.
        path_words = [
            w for s in literal_segments for w in split_words(re.sub(r"\{[^}]*\}", " ", s))
        ]
        op_id = op.original_operation_id or ("" if op.operation_id_generated else op.operation_id)
        id_words = split_words(op_id)
        summary_words = split_words(op.summary)
        leading: list[str] = []
        trailing: list[str] = []
        # Namespaced ids (gmail.users.messages.list, repos/delete): each part's ends.
        for part in re.split(r"[/.]", op_id):
            part_words = split_words(part)
            if part_words:
                leading.append(part_words[0])
                trailing.append(part_words[-1])
                if part_words[0] in prefixes and len(part_words) > 1:
                    leading.append(part_words[1])  # BatchGetItem: the action is "get"
        if summary_words:
            leading.append(summary_words[0])
        if literal_segments:
            # "/pets/find", "/batch-retrieve" but not "/CredentialListMappings".
            last = split_words(re.sub(r"\{[^}]*\}", " ", literal_segments[-1]))
            trailing += last[:1] + last[-1:]
        return cls(
            sources={"path": path_words, "operationId": id_words, "summary": summary_words},
            leading_words=leading,
            action_words=leading + trailing,
        )

    def find(self, lexicon: _Lexicon) -> list[tuple[str, str]]:
        """``(word as written, source)`` pairs, one per word (first source wins)."""
        seen: dict[str, str] = {}
        for source, words in self.sources.items():
            for hit in lexicon.find(words):
                seen.setdefault(hit, source)
        return list(seen.items())

    def action_hits(self, lexicon: _Lexicon) -> list[str]:
        return lexicon.find(self.action_words, base_only=True)

    def leading_hits(self, lexicon: _Lexicon) -> list[str]:
        return lexicon.find(self.leading_words, base_only=True)


def _describe(hits: list[tuple[str, str]]) -> str:
    return ", ".join(f"'{word}' in {source}" for word, source in hits)


def classify(
    op: ParsedOperation,
    *,
    policy: ClassificationPolicy = DEFAULT_POLICY,
    security_schemes: dict[str, Any] | None = None,
) -> Classification:
    """Suggest access level, approval, agent group and customer parameters for ``op``."""
    lex = _compile(policy)
    group = _agent_group(op, lex)
    credentials = _credential_parameters(op, lex, security_schemes or {})
    customer = tuple(p for p in _customer_parameters(op, lex) if p not in credentials)
    if op.is_webhook:
        return Classification(
            AccessType.READ,
            Approval.NONE,
            1.0,
            group,
            (),
            ("webhook: sent by the API, never called by an agent",),
            credentials,
        )
    method = op.method.upper()
    wording = _Wording.of(op, lex.action_prefixes)
    reasons: list[str] = []

    # 1. The HTTP method sets the baseline.
    if method in _READ_METHODS:
        access, confidence = AccessType.READ, 0.9
    elif method == "DELETE":
        access, confidence = AccessType.DESTRUCTIVE, 0.95
    elif method in _WRITE_METHODS:
        access, confidence = AccessType.WRITE, 0.9
    else:
        access, confidence = AccessType.WRITE, 0.5
    reasons.append(f"{method} method → {access}")
    is_read_method = access == AccessType.READ

    destructive = wording.find(lex.destructive)
    staff = wording.find(lex.staff)
    money = wording.find(lex.money)
    field_words = [w for name in op.body_field_names for w in split_words(name)]
    # Field names are matched uninflected: "refunded_note" is not a refund.
    money_fields = lex.money_fields.find(field_words, base_only=True)
    staff_fields = lex.staff.find(field_words, base_only=True)

    # 2. Destructive wording. On a read method only the verb counts ("GET /items/delete", not
    #    "GET /deleted-items"), and a GET that acts is treated as destructive and flagged.
    reading_verb = wording.leading_hits(lex.read)
    if destructive:
        creating_verb = wording.leading_hits(lex.constructive)
        if is_read_method:
            verbs = wording.action_hits(lex.destructive)
            if verbs and not reading_verb:
                access, confidence = AccessType.DESTRUCTIVE, 0.5
                reasons.append(
                    f"{method} whose wording says '{verbs[0]}' → treated as destructive (flagged: "
                    "a read method should not change anything)"
                )
        elif access == AccessType.DESTRUCTIVE:
            confidence = max(confidence, 0.95)
            reasons.append(f"{_describe(destructive)} → destructive (agrees with the method)")
        elif creating_verb and not wording.leading_hits(lex.destructive):
            confidence = 0.75
            reasons.append(
                f"{_describe(destructive)}, but the action is '{creating_verb[0]}' → stays write"
            )
        else:
            access, confidence = AccessType.DESTRUCTIVE, 0.8
            reasons.append(f"{_describe(destructive)} → destructive")

    # 3. Money. Staff words move money out of the business; reading about it does not.
    moves_money_out = False
    if staff or (money_fields and staff_fields):
        hits = staff or [(w, "body fields") for w in staff_fields]
        acting_read = is_read_method and (
            policy.staff_words_on_reads
            or (bool(wording.action_hits(lex.staff)) and not reading_verb)
        )
        if not is_read_method or acting_read or access != AccessType.READ:
            moves_money_out = True
            if access == AccessType.READ:
                access, confidence = AccessType.WRITE, 0.5
                reasons.append(
                    f"{method} whose wording says '{hits[0][0]}' → treated as write (flagged)"
                )
            reasons.append(
                f"{_describe(hits)} → staff word (money or ownership moves out): staff approval"
            )
        else:
            confidence = min(confidence, 0.8)
            reasons.append(f"{_describe(hits)} on a plain {method} → only reads; no approval")
    money_in = bool(money or money_fields) and access != AccessType.READ
    if money_in:
        detail = _describe(money) if money else "body fields " + ", ".join(money_fields)
        reasons.append(f"{detail} → money involved: at least user approval")

    # 4. A POST whose action is search/list/find/... and nothing else says it writes.
    if method == "POST" and access == AccessType.WRITE and not (moves_money_out or money_in):
        verbs = wording.action_hits(lex.read)
        # Write verbs anywhere in the id or path ("searchAndSend") contradict a read; summaries
        # are prose ("the data set"), so only their first word counts.
        writes = lex.write.find(
            wording.sources["operationId"] + wording.sources["path"] + wording.leading_words,
            base_only=True,
        )
        if verbs and not writes:
            access, confidence = AccessType.READ, 0.6
            reasons.append(f"POST search that only reads ('{verbs[0]}') → read, lower confidence")

    # 5. Approval from the access level and money.
    approval = {
        AccessType.READ: Approval.NONE,
        AccessType.WRITE: Approval.USER,
        AccessType.DESTRUCTIVE: Approval.USER,
    }[access]
    if moves_money_out:
        approval = Approval.STAFF
    elif money_in and approval == Approval.NONE:
        approval = Approval.USER

    # 6. The spec author's explicit flag (OpenAI plugin convention).
    flag = op.extensions.get(_CONSEQUENTIAL)
    if flag is True:
        if access == AccessType.READ:
            access, confidence = AccessType.WRITE, min(confidence, 0.7)
        if approval == Approval.NONE:
            approval = Approval.USER
        reasons.append(f"{_CONSEQUENTIAL}: true → at least write with user approval")
    elif flag is False and not is_read_method:
        if access == AccessType.DESTRUCTIVE:
            reasons.append(f"{_CONSEQUENTIAL}: false ignored: destructive keeps user approval")
        elif moves_money_out or money_in:
            reasons.append(f"{_CONSEQUENTIAL}: false ignored: money is involved")
        else:
            approval = Approval.NONE
            reasons.append(f"{_CONSEQUENTIAL}: false → no approval (not destructive)")

    # Invariant, whatever the policy lists say: destroying something is never unapproved.
    if access == AccessType.DESTRUCTIVE and approval == Approval.NONE:
        approval = Approval.USER
    return Classification(
        access=access,
        approval=approval,
        confidence=round(max(0.0, min(1.0, confidence)), 2),
        agent_group=group,
        customer_parameters=customer,
        reasons=tuple(reasons),
        credential_parameters=credentials,
    )


def _agent_group(op: ParsedOperation, lex: _Compiled) -> str:
    """A readable group name: "Orders", "Pet store" (tag ``pet-store_v2``), "General"."""
    if op.tags:
        words = [w for w in split_words(op.tags[0]) if not _VERSION.fullmatch(w)]
        for word in words:
            if word in lex.synonyms:
                return _readable([lex.synonyms[word]])
        if words:
            return _readable(words)
    # AWS-style "/#X-Amz-Target=Service.Action" and "/?Action=X": the fragment is no resource.
    path = op.path.split("#", 1)[0].split("?", 1)[0]
    for segment in path.split("/"):
        if not segment or segment.startswith("{") or segment.lower() in lex.skipped_segments:
            continue
        if _VERSION.fullmatch(segment):
            continue  # versions: v1, 2.0, 2010-04-01, v2beta1
        words = split_words(segment)
        key = "".join(words)
        if key in lex.synonyms:
            return _readable([lex.synonyms[key]])
        for word in words:
            if word in lex.synonyms:
                return _readable([lex.synonyms[word]])
        if words:
            return _readable(words)
    return "General"


def _readable(words: list[str]) -> str:
    return " ".join(words)[:50].strip().capitalize()


def _credential_parameters(
    op: ParsedOperation, lex: _Compiled, security_schemes: dict[str, Any]
) -> tuple[str, ...]:
    """Properties that carry credentials: a credential name, or the parameter an apiKey
    security scheme of the spec declares (same name and location)."""
    scheme_params = {
        (str(scheme.get("in", "")).lower(), str(scheme.get("name", "")).lower())
        for scheme in security_schemes.values()
        if isinstance(scheme, dict) and scheme.get("type") == "apiKey"
    }
    found: list[str] = []
    for prop, location in op.parameter_locations.items():
        if location not in ("path", "query", "header", "cookie"):
            continue  # body fields are the customer's data
        name = op.parameter_names.get(prop, prop)
        if (location, name.lower()) in scheme_params or _squash(name) in lex.credential_parameters:
            found.append(prop)
    return tuple(found)


def _customer_parameters(op: ParsedOperation, lex: _Compiled) -> tuple[str, ...]:
    required = op.required_parameters or tuple(op.parameters_schema.get("required") or ())
    result: dict[str, None] = {}
    for prop in required:
        location = op.parameter_locations.get(prop, "")
        if prop == "body" and location in ("body", "formData"):
            fields = op.body_required_fields or _body_required(op)
            result.update(dict.fromkeys(f for f in fields if _customer_facing(f, lex)))
            if not op.body_field_names:
                result["body"] = None  # e.g. a raw upload: the customer supplies the content
            continue
        if location in ("header", "cookie"):
            continue  # auth, versions, idempotency keys...: set by the integration
        name = op.parameter_names.get(prop, prop)
        if _customer_facing(name, lex):
            result[prop] = None
    return tuple(result)


def _customer_facing(name: str, lex: _Compiled) -> bool:
    return not name.lower().startswith("x-") and _squash(name) not in lex.excluded_parameters


def _body_required(op: ParsedOperation) -> tuple[str, ...]:
    body = op.parameters_schema.get("properties", {}).get("body")
    if isinstance(body, dict) and isinstance(body.get("required"), list):
        return tuple(r for r in body["required"] if isinstance(r, str))
    return ()
