"""Credential parameters in a real chat turn (SPEC §6, issue 13 item 16): the model never sees
them in its tools, a value it invents anyway is not stored, shown or sent, and the call still
carries the spec's credential."""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async

from conversations.models import Conversation, ToolCall
from conversations.turns.engine import wait_idle
from openapi_import.models import Operation
from tests.conversations.chat import connect, frames_until, turn_ended, verify_customer
from tests.support.openai_server import OpenAITestServer, stream_reply, tool_call, tool_calls_reply


def _declare_api_key_parameter() -> None:
    """Give the demo's tracking operation a query ``api_key`` the importer classified as a
    credential (real specs declare such parameters; the demo authenticates by header)."""
    op = Operation.objects.get(operation_id="getOrderTracking")
    op.parameters_schema["properties"]["api_key"] = {"type": "string"}
    op.parameters_schema["required"] = [*op.parameters_schema.get("required", []), "api_key"]
    op.parameter_locations["api_key"] = "query"
    op.credential_parameters = ["api_key"]
    op.save()  # the save signal refreshes the runtime's tool cache


async def test_model_invented_api_key_is_not_stored_shown_or_sent(
    openai_backend: Any, model_server: OpenAITestServer, conversation: Conversation
) -> None:
    await sync_to_async(_declare_api_key_parameter)()
    await sync_to_async(verify_customer)(conversation.pk, email="ana@example.com")
    model_server.enqueue(
        tool_calls_reply(
            tool_call("getOrderTracking", {"order_number": 1042, "api_key": "sk_model_made_up"})
        ),
        stream_reply(["Order 1042 is on its way."]),
    )
    ws, _ = await connect(conversation.pk, "visitor-a")
    await ws.send_json_to({"type": "message", "client_id": "c1", "content": "track 1042"})
    frames = await frames_until(ws, turn_ended)
    await ws.disconnect()
    await wait_idle()
    # The model's tools never offered the parameter.
    first = model_server.chat_requests[0].json
    tracking = next(t for t in first["tools"] if t["function"]["name"] == "getOrderTracking")
    assert "api_key" not in tracking["function"]["parameters"]["properties"]
    assert "api_key" not in tracking["function"]["parameters"].get("required", [])
    # The call ran (the spec's X-Shop-Key credential was sent) with the model's arguments
    # minus the credential, and the invented value is nowhere in the record or the frames.
    call = await ToolCall.objects.aget(conversation=conversation)
    assert call.status == ToolCall.Status.SUCCEEDED, call.error_message
    assert call.arguments == {"order_number": 1042}
    assert "sk_model_made_up" not in str(frames)
    assert next(f for f in frames if f["type"] == "tool_result")["ok"] is True
