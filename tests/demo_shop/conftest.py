"""Fixtures for the demo shop's tests."""

from __future__ import annotations

import pytest
from django.test import Client
from pytest_django.fixtures import Settings as SettingsWrapper

from demo_shop.seed import SeedResult, shop_seed

SHOP_KEY = "test-shop-key"
BASE = "/demo-shop/api"


@pytest.fixture
def shop(settings: SettingsWrapper) -> Client:
    """A client that sends the shop's key, as Actiondesk's tool calls do."""
    settings.DEMO_SHOP_API_KEY = SHOP_KEY
    return Client(headers={"X-Shop-Key": SHOP_KEY})


@pytest.fixture
def seeded(db: None) -> SeedResult:
    return shop_seed()
