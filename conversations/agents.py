"""Agents as YAML (SPEC §4): load a file or a shipped vertical template, export what is
configured. Loading is validated first and applied in one transaction, so a bad file changes
nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
import yaml
from django.db import transaction

from config.errors import ApplicationError, ErrorCode, invalid_fields
from conversations.model_backends import agent_backend_problems
from conversations.models import Agent
from openapi_import.models import Operation

logger = structlog.get_logger(__name__)

TEMPLATES_DIR = Path(__file__).resolve().parent / "agent_templates"
TEMPLATES = ("ecommerce", "saas", "fintech")
FIELDS = {
    "slug": str, "name": str, "description": str, "permission": str, "operations": list,
    "spec": str, "system_prompt": str, "tone": str, "greeting": str,
    "escalation_message": str, "backend": str, "model": str, "fallback": list,
    "is_fallback": bool, "enabled": bool,
}  # fmt: skip
REQUIRED = ("slug", "name", "description")


@dataclass
class LoadResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    missing_operations: dict[str, list[str]] = field(default_factory=dict)


def template_text(name: str) -> str:
    if name not in TEMPLATES:
        raise ApplicationError(
            ErrorCode.NOT_FOUND, f"No template {name!r}; templates: {', '.join(TEMPLATES)}."
        )
    return (TEMPLATES_DIR / f"{name}.yaml").read_text()


def _invalid(message: str) -> ApplicationError:
    return ApplicationError(ErrorCode.VALIDATION_ERROR, message)


def _parse(text: str) -> tuple[str, list[dict[str, Any]]]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise _invalid(f"The agents file is not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("agents"), list):
        raise _invalid("The agents file needs a top-level 'agents' list.")
    agents: list[dict[str, Any]] = []
    seen: set[str] = set()
    for index, item in enumerate(data["agents"], start=1):
        where = f"agents[{index}]"
        if not isinstance(item, dict):
            raise _invalid(f"{where} must be a mapping.")
        unknown = sorted(set(item) - set(FIELDS))
        if unknown:
            raise _invalid(f"{where} has unknown keys: {', '.join(unknown)}.")
        for key in REQUIRED:
            if not isinstance(item.get(key), str) or not item[key].strip():
                raise _invalid(f"{where} needs '{key}' (text).")
        for key, kind in FIELDS.items():
            if key in item and item[key] is not None and not isinstance(item[key], kind):
                raise _invalid(f"{where}.{key} must be {kind.__name__}.")
        if item.get("permission", "read") not in Agent.Permission.values:
            raise _invalid(f"{where}.permission must be read or write.")
        if not all(isinstance(o, str) for o in item.get("operations") or []):
            raise _invalid(f"{where}.operations must be a list of operation ids.")
        from conversations.model_backends import agent_backend_problems

        problems = agent_backend_problems(
            backend=item.get("backend") or "", fallback=item.get("fallback") or []
        )
        if problems:
            raise _invalid(f"{where}: " + " ".join(problems.values()))
        if item["slug"] in seen:
            raise _invalid(f"{where}: slug {item['slug']!r} appears twice.")
        seen.add(item["slug"])
        agents.append(item)
    return str(data.get("template", "")), agents


def agents_load(*, text: str) -> LoadResult:
    """Create or update the agents described by ``text`` (matched by slug). Operations not
    imported yet are reported and linked on a later load."""
    template, items = _parse(text)
    result = LoadResult()
    with transaction.atomic():
        for position, item in enumerate(items):
            operations = Operation.objects.filter(
                operation_id__in=item.get("operations") or [], removed_at__isnull=True
            )
            if item.get("spec"):
                operations = operations.filter(spec__title=item["spec"])
            found = {op.operation_id for op in operations}
            missing = [o for o in item.get("operations") or [] if o not in found]
            if missing:
                result.missing_operations[item["slug"]] = missing
            values = {
                "name": item["name"],
                "description": item["description"].strip(),
                "permission": item.get("permission", Agent.Permission.READ),
                "system_prompt": item.get("system_prompt") or "",
                "tone": item.get("tone") or "",
                "greeting": (item.get("greeting") or "").strip(),
                "escalation_message": item.get("escalation_message") or "",
                "backend": item.get("backend") or "",
                "model": item.get("model") or "",
                "fallback": list(item.get("fallback") or []),
                "is_fallback": bool(item.get("is_fallback", False)),
                "enabled": bool(item.get("enabled", True)),
                "template": template,
                "position": position,
            }
            agent, created = Agent.objects.update_or_create(slug=item["slug"], defaults=values)
            agent.operations.set(operations)
            (result.created if created else result.updated).append(agent.slug)
    logger.info(
        "agents_loaded",
        created=result.created,
        updated=result.updated,
        missing=result.missing_operations,
    )
    return result


def agents_export() -> str:
    items = []
    for agent in Agent.objects.prefetch_related("operations__spec").order_by("position", "slug"):
        item: dict[str, Any] = {
            "slug": agent.slug,
            "name": agent.name,
            "description": agent.description,
            "permission": agent.permission,
            "operations": sorted(op.operation_id for op in agent.operations.all()),
        }
        for key in ("system_prompt", "tone", "greeting", "escalation_message", "backend",
                    "model", "fallback"):  # fmt: skip
            if getattr(agent, key):
                item[key] = getattr(agent, key)
        if agent.is_fallback:
            item["is_fallback"] = True
        if not agent.enabled:
            item["enabled"] = False
        items.append(item)
    return yaml.safe_dump({"agents": items}, sort_keys=False, allow_unicode=True)


AGENT_TEXT_FIELDS = (
    "description", "system_prompt", "tone", "greeting", "escalation_message", "backend", "model",
)  # fmt: skip


def agent_update(*, agent: Agent, changes: dict[str, Any]) -> Agent:
    """Change an agent from the API (or anywhere): text fields, ``enabled`` and the operation
    ids it may call, validated as a YAML load is. The save (and the operations' change) bump
    ``config.versions.AGENT_TOOLS`` on commit, so every process reloads its agents at once."""
    unknown = sorted(set(changes) - {*AGENT_TEXT_FIELDS, "enabled", "operations"})
    if unknown:
        raise _invalid(f"Unknown agent fields: {', '.join(unknown)}.")
    with transaction.atomic():
        for name in AGENT_TEXT_FIELDS:
            if name in changes:
                value = changes[name]
                if not isinstance(value, str):
                    raise _invalid(f"{name} must be text.")
                if name == "description" and not value.strip():
                    raise _invalid("description cannot be empty: routing reads it.")
                setattr(agent, name, value.strip() if name in ("backend", "model") else value)
        if "enabled" in changes:
            if not isinstance(changes["enabled"], bool):
                raise _invalid("enabled must be true or false.")
            agent.enabled = changes["enabled"]
        # The backend must be a configured one, as in the admin and YAML loads: an unknown
        # name is refused here, not found broken in a turn.
        problems = agent_backend_problems(backend=agent.backend, fallback=agent.fallback)
        if problems:
            raise invalid_fields(" ".join(problems.values()), problems, kind="invalid")
        agent.save()
        if "operations" in changes:
            if not isinstance(changes["operations"], list):
                raise _invalid("operations must be a list of operation ids.")
            wanted = list(dict.fromkeys(changes["operations"]))
            operations = list(
                Operation.objects.filter(operation_id__in=wanted, removed_at__isnull=True)
            )
            missing = sorted(set(wanted) - {op.operation_id for op in operations})
            if missing:
                raise ApplicationError(
                    ErrorCode.VALIDATION_ERROR,
                    f"No such operations: {', '.join(missing)}.",
                    details={
                        "fields": [
                            {"field": "operations", "message": f"unknown: {o}", "type": "unknown"}
                            for o in missing
                        ]
                    },
                )
            agent.operations.set(operations)
    logger.info("agent_updated", agent=agent.slug, fields=sorted(changes))
    return agent
