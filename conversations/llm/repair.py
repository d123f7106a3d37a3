"""Tool calls the model got wrong, answered to the model instead of thrown away (issue 15 item 6).

A call with arguments that are not a JSON object, that break the tool's JSON Schema, or that
names a tool it was never offered is a model's slip, not a failed backend. The agent answers
every call of that answer with a tool message (the error for the wrong ones, "not run" for the
others), which gives the model one repair round; if the repaired answer is still wrong the turn
fails honestly. Invented tool names are logged and never reach the customer.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import jsonschema

from conversations.llm.types import ChatMessage, Completion, ToolCall, ToolSpec

UNKNOWN_TOOL = "unknown_tool"
INVALID_ARGUMENTS = "invalid_arguments"
MAX_ERRORS = 3


@dataclass(frozen=True)
class CallProblem:
    call: ToolCall
    kind: str  # UNKNOWN_TOOL | INVALID_ARGUMENTS
    message: str


def call_problems(
    calls: Sequence[ToolCall],
    tools: Sequence[ToolSpec],
    *,
    known: Collection[str] = (),
    check_schema: bool = True,
) -> list[CallProblem]:
    """What is wrong with each call, checked against the tools offered on this call. A name in
    ``known`` but not offered (an operation held back until the customer is verified) is left
    to the caller's own refusal."""
    offered = {tool.name: tool for tool in tools}
    problems = []
    for call in calls:
        tool = offered.get(call.name)
        if tool is None and call.name in known:
            continue
        if tool is None:
            names = ", ".join(sorted(offered)) or "none"
            problems.append(
                CallProblem(
                    call, UNKNOWN_TOOL, f"There is no tool named {call.name!r}. Tools: {names}."
                )
            )
        elif call.error:
            problems.append(CallProblem(call, INVALID_ARGUMENTS, call.error))
        elif check_schema:
            violations = schema_violations(tool.parameters, call.arguments)
            if violations:
                problems.append(
                    CallProblem(
                        call,
                        INVALID_ARGUMENTS,
                        f"The arguments of {call.name!r} do not fit its schema: "
                        + "; ".join(violations),
                    )
                )
    return problems


def schema_violations(schema: dict[str, Any], arguments: dict[str, Any]) -> list[str]:
    """Up to ``MAX_ERRORS`` readable violations ("order_id: 12 is not of type 'string'")."""
    if not schema:
        return []
    try:
        validator_class = jsonschema.validators.validator_for(schema)
        validator = validator_class(schema)
        errors = sorted(
            # Extra properties are the agent's to drop (credentials the model invented are
            # stripped before anything is stored or sent), not a reason to refuse the call.
            (e for e in validator.iter_errors(arguments) if e.validator != "additionalProperties"),
            key=lambda error: [str(part) for part in error.path],
        )
    except jsonschema.SchemaError:
        return []  # the tool's own schema is at fault: not the model's to repair
    out = []
    for error in errors[:MAX_ERRORS]:
        where = "/".join(str(part) for part in error.path) or "(arguments)"
        out.append(f"{where}: {error.message}"[:300])
    return out


def repair_messages(completion: Completion, problems: Sequence[CallProblem]) -> list[ChatMessage]:
    """The assistant's answer and one tool message per call: the error for a wrong call, "not
    run" for the others (nothing of that answer ran)."""
    wrong = {problem.call.id: problem for problem in problems}
    messages = [completion.as_message()]
    for call in completion.tool_calls:
        problem = wrong.get(call.id)
        if problem is not None:
            body = {"error": problem.message, "fix": "Call the tool again with valid arguments."}
            if problem.kind == UNKNOWN_TOOL:
                body["fix"] = "Use only the tools you were given, or answer without a tool."
        else:
            body = {"error": "Not run: another call in the same answer was invalid. Call again."}
        messages.append(
            ChatMessage(
                role="tool",
                tool_call_id=call.id,
                name=call.name,
                content=json.dumps(body, ensure_ascii=False),
            )
        )
    return messages
