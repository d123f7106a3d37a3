"""The agents a turn can route to, with their tools, and who must approve a call.

Reads only: the enabled agents are loaded once per process and kept while the ``agent_tools``
stamp is current (``conversations.signals`` bumps it on every change)."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from config import versions
from conversations import approval_rules
from conversations.agent import policy
from conversations.agent.routing import AgentProfile, RouteDecision, route
from conversations.llm.types import ToolSpec
from conversations.models import Agent, Interrupt
from conversations.selectors import agents_enabled
from conversations.tools import model_schema
from openapi_import.models import AccessType, Approval, IdentityRole, Operation


@dataclass
class AgentSetup:
    agent: Agent
    tools: list[ToolSpec]
    operations: dict[str, Operation]

    def available(self, *, verified: bool) -> set[str]:
        """The tools this customer may use (docs/identity.md)."""
        return {
            name
            for name, op in self.operations.items()
            if policy.operation_available(op, verified=verified)
        }


def tool_spec(operation: Operation, name: str | None = None) -> ToolSpec:
    description = " ".join(filter(None, [operation.summary, operation.description]))[:1000]
    return ToolSpec(
        name=name or operation.operation_id,
        description=description or f"{operation.method} {operation.path}",
        # Credential parameters are never the model's to fill (SPEC §6).
        parameters=model_schema(operation),
    )


def setup_of(agent: Agent, shared: set[str] | None = None) -> AgentSetup:
    """``shared``: the operation ids more than one live spec has (their tools get unique
    names, issue 15 item 7); read here when the caller did not."""
    from openapi_import.selectors import operation_tool_name, shared_operation_ids

    if shared is None:
        shared = shared_operation_ids()
    tools = [op for op in agent.operations.all() if op.is_tool]
    operations = {operation_tool_name(op, shared): op for op in tools}
    return AgentSetup(agent, [tool_spec(op, name) for name, op in operations.items()], operations)


_agents_cached: tuple[str, float, list[AgentSetup]] | None = None


def agents_loaded(stamp: str | None = None) -> list[AgentSetup]:
    """The enabled agents with their tools. Loading them (agents, operations, specs) was a
    tenth of a chat turn's cost, so a process keeps them while the ``agent_tools`` stamp it
    read before loading is current (bumped on every change, ``conversations.signals``), and
    at most ``AGENT_CACHE_SECONDS`` for writes that bypass both (raw SQL). ``stamp``: the
    stamp, when the caller has just read it (``gate.admit``)."""
    global _agents_cached
    if stamp is None:
        stamp = versions.current(versions.AGENT_TOOLS)
    now = time.monotonic()
    cached = _agents_cached
    if stamp is not None and cached is not None and cached[0] == stamp and cached[1] > now:
        return cached[2]
    from openapi_import.selectors import shared_operation_ids

    shared = shared_operation_ids()  # one query for every agent's tool names
    setups = [setup_of(agent, shared) for agent in agents_enabled()]
    if stamp is not None:
        _agents_cached = (stamp, now + settings.AGENT_CACHE_SECONDS, setups)
    return setups


def setup_for(agent_id: int | None) -> AgentSetup | None:
    """The agent of a paused intent, if it is still enabled."""
    if agent_id is None:
        return None
    agent = agents_enabled().filter(pk=agent_id).first()
    return setup_of(agent) if agent is not None else None


def intent_route(
    text: str, context: dict[str, Any], setups: list[AgentSetup], *, site_id: int | None = None
) -> tuple[AgentSetup | None, RouteDecision]:
    """The agent for ``text`` among ``setups`` (``agents_loaded()``), and the router's say.
    A widget site's conversation (``site_id``) is routed among the site's agents only, when
    the site chose some (one query, for site conversations only)."""
    if site_id is not None:
        from sites.selectors import site_agent_ids

        allowed = site_agent_ids(site_id=site_id)
        if allowed is not None:
            setups = [s for s in setups if s.agent.pk in allowed]
    profiles = [
        AgentProfile(
            name=s.agent.slug,
            description=s.agent.description,
            tools=s.tools,
            is_fallback=s.agent.is_fallback,
            read_tools=frozenset(
                name for name, op in s.operations.items() if op.access_type == AccessType.READ
            ),
            label=s.agent.name,
        )
        for s in setups
    ]
    decision = route(text, profiles, context=context)
    chosen = next((s for s in setups if s.agent.slug == decision.agent), None)
    if chosen is not None and decision.read_only:
        chosen = _read_only(chosen)
    return chosen, decision


def _read_only(setup: AgentSetup) -> AgentSetup:
    """The agent for a question ("could I cancel order 1042?"): its read operations only, with
    read permission for this intent, so it answers and offers and proposes nothing (SPEC §6)."""
    agent = copy.copy(setup.agent)
    agent.permission = Agent.Permission.READ
    operations = {
        name: op for name, op in setup.operations.items() if op.access_type == AccessType.READ
    }
    return AgentSetup(agent, [t for t in setup.tools if t.name in operations], operations)


def with_verifiers(setup: AgentSetup, setups: list[AgentSetup]) -> AgentSetup:
    """An unverified customer can verify whichever agent they talk to: the verification
    operations (of any enabled agent) join this agent's tools."""
    extra = {
        name: op
        for s in setups
        for name, op in s.operations.items()
        if policy.is_verifier(op) and name not in setup.operations
    }
    if not extra:
        return setup
    return AgentSetup(
        setup.agent,
        [*setup.tools, *(tool_spec(op) for op in extra.values())],
        {**setup.operations, **extra},
    )


def can_verify_in_chat(setups: list[AgentSetup]) -> bool:
    return any(
        op.identity_role == IdentityRole.VERIFY_START
        for s in setups
        for op in s.operations.values()
    )


@dataclass(frozen=True)
class ApprovalNeed:
    """Who approves a call (``""``: nobody, it runs at once), why, and the operation's
    approval rule that decided it (``{}`` when the operation's own level did)."""

    approver: str
    reason: str = ""
    rule: dict[str, Any] = field(default_factory=dict)


def approval_needed(agent: Agent, operation: Operation, arguments: dict[str, Any]) -> ApprovalNeed:
    """A call runs at once only when both the agent's permission and the operation's
    classification say read-only (SPEC §6). Otherwise the first of the operation's
    ``approval_rules`` that matches the arguments (``amount > 50 → staff``) names the approver,
    else the operation's approval level (``conversations.approval_rules``)."""
    if policy.is_verifier(operation):
        return ApprovalNeed("")  # verifying is how the customer gets to act: nothing to approve
    if agent.permission == Agent.Permission.READ and operation.access_type == AccessType.READ:
        return ApprovalNeed("")
    staff = operation.approval == Approval.STAFF
    default = Interrupt.Approver.STAFF if staff else Interrupt.Approver.USER
    decided = approval_rules.decide(operation.approval_rules or [], arguments, default=default)
    if decided is not None:
        return ApprovalNeed(decided.approver, f"rule: {decided.reason}"[:200], decided.rule)
    if default == Interrupt.Approver.STAFF:
        return ApprovalNeed(default, "the operation is classified as needing staff")
    return ApprovalNeed(default)
