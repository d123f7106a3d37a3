from __future__ import annotations

import secrets

from django.core.exceptions import ValidationError
from django.db import models

from sites.colours import AA_CONTRAST, HEX, contrast_ratio
from sites.origins import origins_parse


def new_public_id() -> str:
    return secrets.token_urlsafe(12)


def new_identity_secret() -> str:
    return secrets.token_urlsafe(32)


class Site(models.Model):
    """A business's website that embeds the chat with ``<script src=".../widget.js"
    data-site="<public_id>">``. Only its origins may frame the widget or open its sockets."""

    name = models.CharField(max_length=100)
    public_id = models.CharField(
        max_length=32,
        unique=True,
        default=new_public_id,
        help_text="Goes in the script tag's data-site; public, not a secret.",
    )
    allowed_origins = models.TextField(
        help_text="One origin per line, e.g. https://shop.example.com (scheme, host, port; "
        "no path, no wildcard)."
    )
    greeting = models.CharField(
        max_length=300,
        blank=True,
        default="Hi! How can I help you today?",
        help_text="The first thing the customer reads when the chat opens.",
    )
    accent_color = models.CharField(
        max_length=7,
        default="#1d4ed8",
        help_text="Launcher, buttons and the customer's bubbles (#rrggbb).",
    )
    accent_text_color = models.CharField(
        max_length=7,
        default="#ffffff",
        help_text="Text on the accent colour (#rrggbb); needs 4.5:1 contrast with it.",
    )
    agents = models.ManyToManyField(
        "conversations.Agent",
        blank=True,
        related_name="sites",
        help_text="The agents this site's customers talk to; none selected: every enabled agent.",
    )
    enabled = models.BooleanField(default=True)
    identity_secret = models.CharField(
        max_length=100,
        default=new_identity_secret,
        help_text="Signs the customer identities this site's server hands to the widget "
        "(docs/identity.md); keep it on the server.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def origins(self) -> list[str]:
        return origins_parse(self.allowed_origins)[0]

    def clean(self) -> None:
        errors: dict[str, str] = {}
        good, bad = origins_parse(self.allowed_origins)
        if bad:
            errors["allowed_origins"] = "Not an origin (scheme://host[:port]): " + ", ".join(bad)
        elif not good:
            errors["allowed_origins"] = "List at least one origin."
        for field in ("accent_color", "accent_text_color"):
            if not HEX.match(getattr(self, field)):
                errors[field] = "Use #rrggbb."
        if not errors:
            ratio = contrast_ratio(self.accent_color, self.accent_text_color)
            if ratio < AA_CONTRAST:
                errors["accent_text_color"] = (
                    f"Contrast with the accent colour is {ratio:.1f}:1; WCAG AA needs "
                    f"{AA_CONTRAST}:1."
                )
        if errors:
            raise ValidationError(errors)
