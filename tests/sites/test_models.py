"""A Site's checks: origins, colours (WCAG AA), agents (sites.models, sites.origins)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from conversations.models import Agent
from sites.colours import contrast_ratio
from sites.origins import origin_normalise, origins_parse
from sites.selectors import site_agent_ids, site_get_enabled
from tests.sites.factories import site_create


@pytest.mark.parametrize(
    ("value", "origin"),
    [
        ("https://Shop.Example", "https://shop.example"),
        ("https://shop.example:443", "https://shop.example"),
        ("http://localhost:8123/", "http://localhost:8123"),
        ("http://127.0.0.1:80", "http://127.0.0.1"),
        ("https://[::1]:8443", "https://[::1]:8443"),
        ("shop.example", None),
        ("ftp://shop.example", None),
        ("https://shop.example/path", None),
        ("https://shop.example/?q=1", None),
        ("https://user@shop.example", None),
        ("https://*.shop.example", None),
        ("https://shop.example:99999", None),
        ("", None),
        ("null", None),
    ],
)
def test_origins_are_normalised_or_refused(value: str, origin: str | None) -> None:
    assert origin_normalise(value) == origin


def test_origin_list_dedupes_and_reports_bad_entries() -> None:
    good, bad = origins_parse("https://a.example\nhttps://A.example:443, http://b.example\n\n/x")
    assert good == ["https://a.example", "http://b.example"]
    assert bad == ["/x"]


def test_contrast_ratio_matches_wcag() -> None:
    assert contrast_ratio("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast_ratio("#ffffff", "#ffffff") == pytest.approx(1.0)
    assert contrast_ratio("#1d4ed8", "#ffffff") > 4.5


@pytest.mark.parametrize(
    ("fields", "error_field"),
    [
        ({"allowed_origins": "https://shop.example/checkout"}, "allowed_origins"),
        ({"allowed_origins": "  "}, "allowed_origins"),
        ({"accent_color": "blue"}, "accent_color"),
        ({"accent_color": "#ffee00", "accent_text_color": "#ffffff"}, "accent_text_color"),
    ],
)
def test_bad_sites_are_refused(db: None, fields: dict[str, str], error_field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        site_create(**fields)
    assert error_field in caught.value.message_dict


def test_each_site_has_its_own_public_id_and_secret(db: None) -> None:
    first, second = site_create(), site_create(name="Other")
    assert first.public_id != second.public_id and len(first.public_id) >= 16
    assert first.identity_secret != second.identity_secret and len(first.identity_secret) >= 40
    assert first.origins == ["https://shop.example", "http://localhost:8123"]


def test_disabled_and_unknown_sites_are_not_found(db: None) -> None:
    site = site_create(enabled=False)
    assert site_get_enabled(public_id=site.public_id) is None
    assert site_get_enabled(public_id="nope") is None
    assert site_get_enabled(public_id="x" * 500) is None
    site.enabled = True
    site.save()
    assert site_get_enabled(public_id=site.public_id) == site


def test_a_site_limits_its_conversations_agents(db: None) -> None:
    orders = Agent.objects.create(slug="orders", name="Orders", description="orders")
    Agent.objects.create(slug="billing", name="Billing", description="billing")
    site = site_create()
    assert site_agent_ids(site_id=site.pk) is None  # no choice: every agent
    site.agents.add(orders)
    assert site_agent_ids(site_id=site.pk) == {orders.pk}


def test_a_sites_conversations_are_routed_among_its_agents_only(db: None) -> None:
    from conversations.turns.setup import intent_route, setup_of

    orders = Agent.objects.create(
        slug="orders", name="Orders", description="order status, tracking and shipments"
    )
    discounts = Agent.objects.create(
        slug="discounts", name="Discounts", description="discount codes and coupons"
    )
    setups = [setup_of(orders), setup_of(discounts)]
    site = site_create()
    chosen, _ = intent_route("where is my order, what is its status?", {}, setups)
    assert chosen is not None and chosen.agent == orders
    site.agents.add(discounts)
    chosen, decision = intent_route(
        "where is my order, what is its status?", {}, setups, site_id=site.pk
    )
    assert set(decision.scores) == {"discounts"}
    assert chosen is None or chosen.agent == discounts
