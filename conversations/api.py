# No `from __future__ import annotations` here: django-ninja reads the parameter annotations
# (Query[...]) at import time.
"""Headless chat, interrupts and agents for programs (SPEC §11, docs/api.md).

A conversation a key creates belongs to the key's integration: keys of that integration and
staff sessions see it, every other key gets 404 (as for a conversation that does not exist)."""

from typing import Any
from uuid import UUID

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from ninja import Query, Router, Status

from access.auth import require
from access.models import ApiKey
from config.errors import invalid_fields
from conversations.agents import agent_update
from conversations.headless import (
    RUNNING,
    Reply,
    conversation_open,
    interrupt_decide_for_program,
    message_send,
    reply_for,
)
from conversations.models import Agent, Conversation, Message
from conversations.resolution import conversation_close
from conversations.schemas import (
    AgentOut,
    AgentPatch,
    ConversationDetailOut,
    ConversationFilters,
    ConversationIn,
    ConversationOut,
    ConversationPage,
    DecisionIn,
    DecisionOut,
    InterruptFilters,
    InterruptOut,
    MessageIn,
    MessagePage,
    MessagesQuery,
    ReplyOut,
)
from conversations.selectors import (
    conversation_get_for_program,
    conversation_list_for_program,
    interrupts_pending_for_program,
    messages_page,
)

router = Router()
CHAT = ApiKey.Scope.CHAT
APPROVALS = ApiKey.Scope.APPROVALS
AGENTS = ApiKey.Scope.AGENTS
VIEW = "conversations.view_conversation"
ADD = "conversations.add_conversation"
CHANGE = "conversations.change_conversation"
DECIDE = "conversations.decide_interrupt"


def _integration(request: HttpRequest) -> str | None:
    """Whose conversations the caller sees: its key's integration; ``None`` for staff
    sessions, who see every conversation."""
    api_key: ApiKey | None = getattr(request, "api_key", None)
    return api_key.integration_name if api_key is not None else None


def _conversation(request: HttpRequest, conversation_id: UUID) -> Conversation:
    return conversation_get_for_program(
        conversation_id=conversation_id, integration=_integration(request)
    )


def _poll_link(conversation_id: Any, message_id: int) -> str:
    return f"/api/v1/conversations/{conversation_id}/messages/{message_id}/reply"


def _reply_response(reply: Reply) -> Status:
    if reply.status == RUNNING:
        reply.poll = _poll_link(reply.message.conversation_id, reply.message.pk)
        return Status(202, reply)
    return Status(200, reply)


# --- Conversations -------------------------------------------------------------------------------


@router.post(
    "/conversations",
    response={201: ConversationOut},
    summary="Open a conversation (for a customer you vouch for)",
    tags=["conversations"],
)
def create_conversation(request: HttpRequest, payload: ConversationIn) -> Status:
    require(request, scope=CHAT, permission=ADD)
    api_key: ApiKey | None = getattr(request, "api_key", None)
    conversation = conversation_open(
        integration=api_key.integration_name if api_key else f"user:{request.user.pk}",
        customer=payload.customer.model_dump() if payload.customer else None,
        metadata=payload.metadata,
    )
    return Status(201, conversation)


@router.get(
    "/conversations",
    response=ConversationPage,
    summary="List conversations (newest first, cursor pagination)",
    tags=["conversations"],
)
def list_conversations(request: HttpRequest, filters: Query[ConversationFilters]) -> Any:
    require(request, scope=CHAT, permission=VIEW)
    items, next_cursor = conversation_list_for_program(
        integration=_integration(request),
        state=filters.state,
        agent=filters.agent,
        escalated=filters.escalated,
        updated_since=filters.updated_since,
        cursor=filters.cursor,
        limit=filters.limit,
    )
    return {"items": items, "next_cursor": next_cursor}


@router.get(
    "/conversations/{conversation_id}",
    response=ConversationDetailOut,
    summary="A conversation with its first page of messages",
    tags=["conversations"],
)
def get_conversation(
    request: HttpRequest, conversation_id: UUID, page: Query[MessagesQuery]
) -> Any:
    require(request, scope=CHAT, permission=VIEW)
    conversation = _conversation(request, conversation_id)
    items, next_after = messages_page(
        conversation_id=conversation.pk, after=page.after, limit=page.limit
    )
    conversation.api_messages = {"items": items, "next_after": next_after}  # type: ignore[attr-defined]
    return conversation


@router.get(
    "/conversations/{conversation_id}/messages",
    response=MessagePage,
    summary="The conversation's timeline, by sequence number",
    tags=["conversations"],
)
def list_messages(request: HttpRequest, conversation_id: UUID, page: Query[MessagesQuery]) -> Any:
    require(request, scope=CHAT, permission=VIEW)
    conversation = _conversation(request, conversation_id)
    items, next_after = messages_page(
        conversation_id=conversation.pk, after=page.after, limit=page.limit
    )
    return {"items": items, "next_after": next_after}


@router.post(
    "/conversations/{conversation_id}/messages",
    response={200: ReplyOut, 202: ReplyOut},
    summary="Send the customer's message and get the reply (202 and a poll link past `wait`)",
    tags=["conversations"],
)
def create_message(
    request: HttpRequest, conversation_id: UUID, payload: MessageIn
) -> Status | HttpResponse:
    require(request, scope=CHAT, permission=CHANGE)
    conversation = _conversation(request, conversation_id)
    reply = message_send(
        conversation=conversation,
        content=payload.content,
        client_id=payload.client_id,
        wait=payload.wait,
    )
    return _reply_response(reply)


@router.get(
    "/conversations/{conversation_id}/messages/{message_id}/reply",
    response={200: ReplyOut, 202: ReplyOut},
    summary="The reply to a message (202 while its turn runs)",
    tags=["conversations"],
)
def get_reply(request: HttpRequest, conversation_id: UUID, message_id: int) -> Status:
    require(request, scope=CHAT, permission=VIEW)
    conversation = _conversation(request, conversation_id)
    message = get_object_or_404(
        Message,
        pk=message_id,
        conversation=conversation,
        role=Message.Role.USER,
        kind=Message.Kind.MESSAGE,
    )
    return _reply_response(reply_for(message=message))


@router.post(
    "/conversations/{conversation_id}/close",
    response=ConversationOut,
    summary="Close the conversation (closing twice is harmless)",
    tags=["conversations"],
)
def close_conversation(request: HttpRequest, conversation_id: UUID) -> Conversation:
    require(request, scope=CHAT, permission=CHANGE)
    conversation = _conversation(request, conversation_id)
    conversation_close(
        conversation=conversation,
        reason="closed through the API",
        actor=request.user,  # type: ignore[arg-type]
    )
    return _conversation(request, conversation_id)


# --- Interrupts ----------------------------------------------------------------------------------


def _may_decide_staff(request: HttpRequest) -> bool:
    api_key: ApiKey | None = getattr(request, "api_key", None)
    if api_key is not None and APPROVALS not in api_key.scopes:
        return False
    return bool(request.user.has_perm(DECIDE))


@router.get(
    "/interrupts",
    response=list[InterruptOut],
    summary="Pending approval requests (all, or one conversation's)",
    tags=["interrupts"],
)
def list_interrupts(request: HttpRequest, filters: Query[InterruptFilters]) -> Any:
    require(request, scope=CHAT, permission=VIEW)
    return list(
        interrupts_pending_for_program(
            integration=_integration(request),
            conversation_id=filters.conversation_id,
            approver=filters.approver,
        )[:500]
    )


def _decide(
    request: HttpRequest, conversation_id: UUID, interrupt_id: UUID, approve: bool, body: DecisionIn
) -> Any:
    require(request, scope=CHAT, permission=VIEW)
    conversation = _conversation(request, conversation_id)
    decision = interrupt_decide_for_program(
        conversation=conversation,
        interrupt_id=str(interrupt_id),
        approve=approve,
        arguments_hash=body.arguments_hash,
        user=request.user,  # type: ignore[arg-type]
        may_decide_staff=_may_decide_staff(request),
        wait=body.wait,
    )
    return {"interrupt": decision.interrupt, "replies": decision.replies, "state": decision.state}


@router.post(
    "/conversations/{conversation_id}/interrupts/{interrupt_id}/approve",
    response=DecisionOut,
    summary="Approve an action, bound to its arguments_hash",
    tags=["interrupts"],
)
def approve_interrupt(
    request: HttpRequest, conversation_id: UUID, interrupt_id: UUID, payload: DecisionIn
) -> Any:
    if not payload.arguments_hash:
        raise invalid_fields(
            "Approving needs the interrupt's arguments_hash.", {"arguments_hash": "required"}
        )
    return _decide(request, conversation_id, interrupt_id, True, payload)


@router.post(
    "/conversations/{conversation_id}/interrupts/{interrupt_id}/reject",
    response=DecisionOut,
    summary="Reject an action",
    tags=["interrupts"],
)
def reject_interrupt(
    request: HttpRequest, conversation_id: UUID, interrupt_id: UUID, payload: DecisionIn
) -> Any:
    return _decide(request, conversation_id, interrupt_id, False, payload)


# --- Agents --------------------------------------------------------------------------------------


def _agent(slug: str) -> Agent:
    return get_object_or_404(Agent.objects.prefetch_related("operations"), slug=slug)


@router.get("/agents", response=list[AgentOut], summary="List agents", tags=["agents"])
def list_agents(request: HttpRequest) -> Any:
    require(request, scope=AGENTS, permission="conversations.view_agent")
    return list(Agent.objects.prefetch_related("operations"))


@router.get("/agents/{slug}", response=AgentOut, summary="An agent", tags=["agents"])
def get_agent(request: HttpRequest, slug: str) -> Agent:
    require(request, scope=AGENTS, permission="conversations.view_agent")
    return _agent(slug)


@router.patch(
    "/agents/{slug}",
    response=AgentOut,
    summary="Change an agent (reaches every process at once)",
    tags=["agents"],
)
def update_agent(request: HttpRequest, slug: str, payload: AgentPatch) -> Agent:
    require(request, scope=AGENTS, permission="conversations.change_agent")
    agent = agent_update(agent=_agent(slug), changes=payload.model_dump(exclude_unset=True))
    return _agent(agent.slug)
