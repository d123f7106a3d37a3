"""Small specs written for the import tests (the real-world corpus is in fixtures/)."""

from __future__ import annotations

import json
from typing import Any

import yaml


def shop_spec(
    *,
    version: str = "1.0",
    extra_paths: dict[str, Any] | None = None,
    drop: tuple[str, ...] = (),
    order_summary: str = "Get an order",
) -> dict[str, Any]:
    paths: dict[str, Any] = {
        "/orders/{number}": {
            "get": {
                "operationId": "getOrder",
                "summary": order_summary,
                "parameters": [
                    {
                        "name": "number",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "integer"},
                    },
                ],
                "responses": {"200": {"description": "The order"}},
            }
        },
        "/orders/{number}/cancel": {
            "post": {
                "operationId": "cancelOrder",
                "summary": "Cancel an order",
                "parameters": [
                    {
                        "name": "number",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "integer"},
                    },
                ],
                "responses": {"200": {"description": "Cancelled"}},
            }
        },
        "/orders/{number}/refunds": {
            "post": {
                "operationId": "createRefund",
                "summary": "Refund an order",
                "parameters": [
                    {
                        "name": "number",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "integer"},
                    },
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["amount"],
                                "properties": {
                                    "amount": {"type": "number"},
                                    "reason": {"type": "string"},
                                },
                            }
                        }
                    },
                },
                "responses": {"201": {"description": "Refunded"}},
            }
        },
    }
    for key in drop:
        paths.pop(key)
    paths.update(extra_paths or {})
    return {
        "openapi": "3.0.3",
        "info": {"title": "Test Shop", "version": version},
        "servers": [{"url": "/api"}],
        "paths": paths,
    }


def as_json(spec: dict[str, Any]) -> bytes:
    return json.dumps(spec).encode()


def as_yaml(spec: dict[str, Any]) -> bytes:
    return yaml.safe_dump(spec).encode()
