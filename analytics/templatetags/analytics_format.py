"""Formatting of dashboard figures: rates as percentages, durations in ms or s, money."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def figure(value: object, unit: str = "count") -> str:
    if value is None:
        return "—"
    number = float(value)  # type: ignore[arg-type]
    if unit == "rate":
        return f"{number * 100:.1f} %"
    if unit == "ms":
        return f"{number / 1000:.1f} s" if number >= 1000 else f"{number:.0f} ms"
    if unit == "money":
        return f"${number:,.4f}" if number < 1 else f"${number:,.2f}"
    return f"{number:,.0f}" if number == int(number) else f"{number:,.2f}"


@register.filter
def change(card: dict[str, object]) -> str:
    """The change against the previous period: points for rates, the unit's own otherwise."""
    delta = card.get("change")
    if delta is None:
        return "no earlier data"
    number = float(delta)  # type: ignore[arg-type]
    sign = "+" if number > 0 else "−" if number < 0 else "±"
    unit = str(card.get("unit"))
    if unit == "rate":
        return f"{sign}{abs(number) * 100:.1f} pts vs previous period"
    return f"{sign}{figure(abs(number), unit)} vs previous period"


@register.filter
def pretty(value: object) -> str:
    """A replay detail as indented JSON (auto-escaped by the template)."""
    import json

    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)
