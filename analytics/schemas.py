# No `from __future__ import annotations` here: django-ninja reads the annotations at import.
"""The analytics API's schemas: the same figures as the dashboard (docs/analytics.md)."""

from ninja import Field, Schema


class RangeOut(Schema):
    from_: str = Field(..., alias="from", description="Start (inclusive), ISO 8601")
    to: str = Field(..., description="End (exclusive), ISO 8601")
    tz: str
    preset: str = Field(..., description="24h, 7d, 30d, or empty for a custom range")
    bucket: str = Field(..., description="hour or day: the step of `series`")


class CardOut(Schema):
    key: str
    label: str
    unit: str = Field(..., description="count, rate (0..1), ms or money")
    value: float | None
    previous: float | None = Field(..., description="The same figure in the previous period")
    change: float | None = Field(..., description="value − previous")


class CohortCountsOut(Schema):
    started: int
    handled: int
    escalated: int
    confirmed: int
    assumed: int
    ai_resolved: int
    durable: int
    durable_pending: int
    abandoned: int
    open: int
    reopened: int
    reopen_base: int


class CohortRatesOut(Schema):
    ai_resolution: float | None
    confirmed_resolution: float | None
    assumed_resolution: float | None
    durable_resolution: float | None
    escalation: float | None
    abandonment: float | None
    reopen: float | None


class TurnsToResolutionOut(Schema):
    mean: float | None
    median: float | None


class ConversationsOut(Schema):
    counts: CohortCountsOut
    rates: CohortRatesOut
    turns_to_resolution: TurnsToResolutionOut


class LatencyFigureOut(Schema):
    count: int
    median_ms: float | None
    p95_ms: float | None


class LatencyOut(Schema):
    first_response: LatencyFigureOut
    turn: LatencyFigureOut
    pickup: LatencyFigureOut
    first_staff_action: LatencyFigureOut
    approval: LatencyFigureOut


class MessagesOut(Schema):
    received: int
    rejected: int


class ApprovalsOut(Schema):
    requested: int
    approved: int
    rejected: int
    expired: int
    approval_rate: float | None


class UsageOut(Schema):
    prompt_tokens: int
    completion_tokens: int
    cost: float
    tokens_per_conversation: float | None
    cost_per_conversation: float | None
    cost_per_resolution: float | None


class OperationOut(Schema):
    operation: str
    calls: int
    succeeded: int
    failed: int
    success_rate: float | None
    latency_median_ms: float | None
    latency_p95_ms: float | None


class AgentUsageOut(Schema):
    agent: str
    selections: int
    model_calls: int
    tokens: int
    cost: float
    resolving_turns: int


class BackendUsageOut(Schema):
    backend: str
    calls: int
    errors: int
    error_rate: float | None
    latency_median_ms: float | None
    latency_p95_ms: float | None


class ReasonOut(Schema):
    reason: str
    count: int


class PointOut(Schema):
    start: str
    conversations: int
    ai_resolved: int
    escalated: int
    tool_calls: int
    tool_failures: int
    cost: float


class AnalyticsOut(Schema):
    range: RangeOut
    cards: list[CardOut]
    conversations: ConversationsOut
    messages: MessagesOut
    latency: LatencyOut
    approvals: ApprovalsOut
    usage: UsageOut
    operations: list[OperationOut]
    agents: list[AgentUsageOut]
    backends: list[BackendUsageOut]
    escalation_reasons: list[ReasonOut]
    series: list[PointOut]


class AnalyticsQuery(Schema):
    range: str = Field("", description="24h, 7d (default) or 30d")
    from_: str = Field("", alias="from", description="Custom start: YYYY-MM-DD or ISO date-time")
    to: str = Field("", description="Custom end: YYYY-MM-DD (included) or ISO date-time")
    tz: str = Field("UTC", description="IANA time zone for dates and the series")


class ReplayStepOut(Schema):
    number: int = Field(..., description="1-based position in the whole timeline")
    kind: str = Field(
        ...,
        description="customer_message, agent_selection, model_call, tool_call, tool_result, "
        "interrupt, decision, escalation, escalation_claimed, staff_joined, staff_message, reply, "
        "resolution_check, resolution_answered, closed, reopened, …",
    )
    title: str
    text: str
    at: str
    seq: int | None = Field(..., description="The timeline item's seq; null for recorded steps")
    detail: dict = Field(..., description="Latency, tokens, cost, arguments, result (masked)")


class ReplayOut(Schema):
    conversation_id: str
    title: str
    state: str
    page: int
    pages: int
    total: int
    steps: list[ReplayStepOut]
