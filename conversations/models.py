from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class Agent(models.Model):
    """An AI agent: what it is for (routing reads the description), which operations it may call
    and whether it may change anything."""

    class Permission(models.TextChoices):
        READ = "read", "Read only"
        WRITE = "write", "Read and write (writes need approval)"

    slug = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=100)
    description = models.TextField(help_text="What this agent handles; the router reads it.")
    permission = models.CharField(max_length=5, choices=Permission.choices, default=Permission.READ)
    operations = models.ManyToManyField(
        "openapi_import.Operation", blank=True, related_name="agents"
    )
    system_prompt = models.TextField(blank=True)
    tone = models.CharField(max_length=200, blank=True, help_text="e.g. warm, concise")
    greeting = models.TextField(blank=True)
    escalation_message = models.TextField(
        blank=True, help_text="What the customer reads when a human is called."
    )
    backend = models.CharField(
        max_length=50,
        blank=True,
        help_text="Name of a model backend (LLM_BACKENDS or Model backends); empty: the default "
        "backend with the deployment's fallback order (LLM_FALLBACK).",
    )
    model = models.CharField(max_length=100, blank=True, help_text="Empty: the backend's model.")
    fallback = models.JSONField(
        default=list,
        blank=True,
        help_text='Backend names tried in order when the backend fails, e.g. ["offline"]. '
        "With a backend chosen, empty means no fallback.",
    )
    is_fallback = models.BooleanField(
        default=False, help_text="Answers what no other agent matches (small talk, help)."
    )
    enabled = models.BooleanField(default=True)
    template = models.CharField(max_length=50, blank=True, help_text="Vertical template of origin")
    position = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """An unknown backend name is refused here (the admin, YAML loads), not in a turn."""
        from django.core.exceptions import ValidationError

        from conversations.model_backends import agent_backend_problems

        problems = agent_backend_problems(backend=self.backend, fallback=self.fallback)
        if problems:
            raise ValidationError(problems)


class ModelBackend(models.Model):
    """A named model backend edited in the admin (issue 15 item 1). ``LLM_BACKENDS`` in the
    environment takes precedence: a row with the same name as an environment backend is
    ignored (the admin shows it)."""

    class Kind(models.TextChoices):
        OPENAI = "openai", "OpenAI-compatible server"
        OFFLINE = "offline", "Offline (no model)"
        RECORDED = "recorded", "Recorded cassette (tests)"

    name = models.SlugField(max_length=50, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.OPENAI)
    base_url = models.URLField(
        max_length=500, blank=True, help_text="e.g. http://127.0.0.1:11434/v1 (with /v1)."
    )
    api_key = models.CharField(max_length=500, blank=True, help_text="Empty for local servers.")
    model = models.CharField(max_length=200, blank=True)
    timeout = models.FloatField(default=30.0, help_text="Seconds per attempt.")
    retries = models.PositiveSmallIntegerField(default=2)
    temperature = models.FloatField(null=True, blank=True)
    max_tokens = models.PositiveIntegerField(null=True, blank=True)
    headers = models.JSONField(default=dict, blank=True, help_text="Extra request headers.")
    stream_options = models.BooleanField(
        default=True,
        help_text="Send stream_options (usage in streams); turn off for servers that reject it.",
    )
    price_per_1k_prompt = models.DecimalField(
        max_digits=12, decimal_places=6, null=True, blank=True, help_text="USD per 1K tokens."
    )
    price_per_1k_completion = models.DecimalField(
        max_digits=12, decimal_places=6, null=True, blank=True, help_text="USD per 1K tokens."
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "model backend"

    def __str__(self) -> str:
        return self.name

    def as_entry(self) -> dict[str, object]:
        """The same shape as an ``LLM_BACKENDS`` entry."""
        return {
            "name": self.name,
            "kind": self.kind,
            "base_url": self.base_url,
            "api_key": self.api_key,
            "model": self.model,
            "timeout": self.timeout,
            "retries": self.retries,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "headers": self.headers or {},
            "stream_options": self.stream_options,
            "price_per_1k_prompt": self.price_per_1k_prompt,
            "price_per_1k_completion": self.price_per_1k_completion,
        }

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        from conversations.llm.configs import config_from_mapping
        from conversations.llm.types import LLMConfigurationError

        try:
            config_from_mapping(self.as_entry(), where="backend")
        except LLMConfigurationError as exc:
            raise ValidationError(str(exc)) from exc


class BackendCircuit(models.Model):
    """A backend's circuit breaker state when there is no Redis: every process reads and
    writes the same row (``conversations.model_backends.DatabaseBreakerStore``)."""

    name = models.CharField(max_length=50, primary_key=True)
    state = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "backend circuit"

    def __str__(self) -> str:
        return self.name


class IdentitySource(models.TextChoices):
    ANONYMOUS = "", "Anonymous"
    SIGNED = "signed", "Signed identity from the business's site"
    API = "api", "Asserted by a program (API)"
    VERIFICATION = "verification", "Verified in the chat"


class Resolution(models.TextChoices):
    """The AI's resolution of a conversation (docs/analytics.md)."""

    NONE = "", "Not resolved by the AI"
    CONFIRMED = "confirmed", "Confirmed by the customer"
    ASSUMED = "assumed", "Assumed (closed without asking for more help)"


class Conversation(models.Model):
    class State(models.TextChoices):
        AI_ACTIVE = "ai_active", "AI active"
        AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
        ESCALATED = "escalated", "Escalated (waiting for staff)"
        HUMAN_ACTIVE = "human_active", "Human active"
        RESOLVED = "resolved", "Resolved"
        CLOSED = "closed", "Closed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # The signed visitor cookie's id, or empty for conversations owned by a user account.
    visitor_id = models.CharField(max_length=64, blank=True, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="conversations",
    )
    # The business's website whose widget started it (docs/widget.md); empty for the chat page.
    site = models.ForeignKey(
        "sites.Site",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="conversations",
    )
    state = models.CharField(max_length=20, choices=State.choices, default=State.AI_ACTIVE)
    # The highest sequence number handed out; every durable frame takes the next one.
    last_seq = models.PositiveIntegerField(default=0)
    # Entities remembered across turns ("cancel that one"): order number, email, code.
    context = models.JSONField(default=dict, blank=True)
    current_agent = models.ForeignKey(Agent, null=True, blank=True, on_delete=models.SET_NULL)
    turn_count = models.PositiveIntegerField(default=0)
    reopen_count = models.PositiveIntegerField(default=0)
    title = models.CharField(max_length=200, blank=True)
    # Who the customer is (SPEC §3): anonymous until a signed identity from the business's
    # site, a program (API), or a verification operation inside the chat says otherwise.
    identity_source = models.CharField(
        max_length=20, choices=IdentitySource.choices, default=IdentitySource.ANONYMOUS, blank=True
    )
    customer_id = models.CharField(max_length=200, blank=True)
    customer_email = models.EmailField(max_length=254, blank=True)
    customer_name = models.CharField(max_length=200, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    # The resolution lifecycle (docs/analytics.md): what the AI resolved and how, when the
    # conversation was first handed to humans ("handoff wins"), closed and last reopened.
    resolution = models.CharField(
        max_length=10, choices=Resolution.choices, default=Resolution.NONE, blank=True
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_turns = models.PositiveIntegerField(null=True, blank=True)
    # A "Did that solve it?" waiting for the customer's answer.
    resolution_asked_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    reopened_at = models.DateTimeField(null=True, blank=True)
    # The program that opened it through the API (``ApiKey.integration_name``): only its keys
    # and staff see it. Empty for chat conversations.
    integration = models.CharField(max_length=100, blank=True)
    # What the program attached (its ticket id, channel, …), returned as given.
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["state", "updated_at"]),
            # The analytics cohort: conversations started in a range.
            models.Index(fields=["created_at"], name="conversation_created_idx"),
            models.Index(fields=["integration", "-created_at"], name="conversation_integration"),
        ]

    def __str__(self) -> str:
        return self.title or f"Conversation {str(self.id)[:8]}"

    @property
    def is_verified(self) -> bool:
        return self.identity_source != IdentitySource.ANONYMOUS and self.verified_at is not None


class Turn(models.Model):
    """The agent's work on one user message."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"
        AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
        SKIPPED = "skipped", "Skipped (a human holds the conversation)"

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="turns")
    user_message = models.OneToOneField(
        "Message", on_delete=models.CASCADE, related_name="turn_started"
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RUNNING)
    agent = models.ForeignKey(Agent, null=True, blank=True, on_delete=models.SET_NULL)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    first_token_ms = models.FloatField(null=True, blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    error_code = models.CharField(max_length=40, blank=True)
    error_message = models.TextField(blank=True)
    # The turn completed the customer's request (an answer from a tool result, or an action
    # executed): the chat asks "Did that solve it?" after it.
    resolving = models.BooleanField(default=False)
    model_calls = models.PositiveSmallIntegerField(default=0)
    tool_calls = models.PositiveSmallIntegerField(default=0)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    # Where the turn stands: the intents, which one runs, and the model conversation so far, so
    # a turn paused for approval resumes in another process after a restart.
    plan = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["started_at"]

    def __str__(self) -> str:
        return f"Turn {self.pk} ({self.status})"


class Message(models.Model):
    """A durable item of the conversation's timeline, numbered by ``seq``: what a reconnecting
    client replays with ``resume``. Streamed tokens are not stored; the finished text is."""

    class Kind(models.TextChoices):
        MESSAGE = "message", "Message"
        TOOL_CALL = "tool_call", "Tool call"
        TOOL_RESULT = "tool_result", "Tool result"
        CLARIFICATION = "clarification", "Clarification"
        INTERRUPT = "interrupt", "Interrupt"
        INTERRUPT_RESOLVED = "interrupt_resolved", "Interrupt resolved"
        INTERRUPT_EXPIRED = "interrupt_expired", "Interrupt expired"
        ESCALATED = "escalated", "Escalated"
        STAFF_JOINED = "staff_joined", "Staff joined"
        RESOLUTION_CHECK = "resolution_check", "Resolution check"
        RESOLUTION_ANSWERED = "resolution_answered", "Resolution answered"
        CLOSED = "closed", "Closed"
        REOPENED = "reopened", "Reopened"

    class Role(models.TextChoices):
        USER = "user", "Customer"
        ASSISTANT = "assistant", "Assistant"
        STAFF = "staff", "Staff"
        SYSTEM = "system", "System"

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    seq = models.PositiveIntegerField()
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.MESSAGE)
    role = models.CharField(max_length=10, choices=Role.choices)
    content = models.TextField(blank=True)
    payload = models.JSONField(default=dict, blank=True)
    # NULL, not "", for staff and system items: the unique constraint skips NULLs.
    client_id = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    turn = models.ForeignKey(
        Turn, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages"
    )
    agent = models.ForeignKey(Agent, null=True, blank=True, on_delete=models.SET_NULL)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # When MESSAGE_RETENTION_DAYS masked its text (conversations.retention); null: as typed.
    masked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["conversation", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["conversation", "seq"], name="unique_message_seq"),
            models.UniqueConstraint(
                fields=["conversation", "client_id"],
                condition=models.Q(client_id__isnull=False),
                name="unique_message_client_id",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.kind} {self.role}"


class ToolCall(models.Model):
    """One call of an operation on the business's API, with its outcome."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for approval"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        REJECTED = "rejected", "Rejected"
        EXPIRED = "expired", "Expired"
        SKIPPED = "skipped", "Skipped"

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="tool_calls"
    )
    turn = models.ForeignKey(Turn, on_delete=models.CASCADE, related_name="tool_call_records")
    operation = models.ForeignKey(
        "openapi_import.Operation", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    operation_name = models.CharField(max_length=64)
    arguments = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    result = models.JSONField(null=True, blank=True)
    error_kind = models.CharField(max_length=20, blank=True)
    error_message = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    latency_ms = models.FloatField(null=True, blank=True)
    idempotency_key = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # When the call went out: a call still "running" long after this died with its process.
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # When MESSAGE_RETENTION_DAYS masked its arguments and result (conversations.retention).
    masked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.operation_name} ({self.status})"


class StateTransition(models.Model):
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="transitions"
    )
    from_state = models.CharField(max_length=20, choices=Conversation.State.choices)
    to_state = models.CharField(max_length=20, choices=Conversation.State.choices)
    reason = models.CharField(max_length=200, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.from_state} → {self.to_state}"


class Interrupt(models.Model):
    """A consequential call waiting for a decision, bound to its exact arguments (SPEC §6)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        EXPIRED = "expired", "Expired"

    class Approver(models.TextChoices):
        USER = "user", "Customer"
        STAFF = "staff", "Staff"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="interrupts"
    )
    turn = models.ForeignKey(Turn, on_delete=models.CASCADE, related_name="interrupts")
    tool_call = models.OneToOneField(ToolCall, on_delete=models.CASCADE, related_name="interrupt")
    operation = models.ForeignKey(
        "openapi_import.Operation", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    operation_name = models.CharField(max_length=64)
    arguments = models.JSONField(default=dict)
    arguments_hash = models.CharField(max_length=64)
    summary = models.TextField()
    approver = models.CharField(max_length=5, choices=Approver.choices)
    policy_reason = models.CharField(max_length=200, blank=True)
    # The operation's approval rule that decided the approver, as it stood when this opened.
    approval_rule = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    expires_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    decision_source = models.CharField(max_length=20, blank=True)
    edited = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        permissions = [("decide_interrupt", "Can approve or reject actions that need staff")]
        indexes = [models.Index(fields=["status", "approver", "expires_at"])]

    def __str__(self) -> str:
        return f"{self.summary} ({self.status})"
