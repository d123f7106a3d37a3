"""A small spec written in the shape of Stripe's (OpenAPI 3.0, form-urlencoded bodies whose
nested fields carry ``style: deepObject`` encodings, deepObject query filters, ``anyOf`` with
``enum: [""]`` to clear a field). Stripe's own spec is not in the corpus; this reproduces the
shape of ``PostCustomers`` and ``GetCustomers`` by hand."""

from __future__ import annotations

from typing import Any

_DEEP = {"explode": True, "style": "deepObject"}


def stripe_style_spec(server: str = "https://api.stripe.example") -> dict[str, Any]:
    address = {
        "properties": {
            "city": {"maxLength": 5000, "type": "string"},
            "country": {"maxLength": 5000, "type": "string"},
            "line1": {"maxLength": 5000, "type": "string"},
            "postal_code": {"maxLength": 5000, "type": "string"},
        },
        "title": "optional_fields_customer_address",
        "type": "object",
    }
    post_customers = {
        "operationId": "PostCustomers",
        "summary": "Create a customer",
        "requestBody": {
            "required": False,
            "content": {
                "application/x-www-form-urlencoded": {
                    "encoding": {
                        "address": _DEEP,
                        "expand": _DEEP,
                        "invoice_settings": _DEEP,
                        "metadata": _DEEP,
                        "preferred_locales": _DEEP,
                        "tax_id_data": _DEEP,
                    },
                    "schema": {
                        "additionalProperties": False,
                        "type": "object",
                        "properties": {
                            "address": {"anyOf": [address, {"enum": [""], "type": "string"}]},
                            "balance": {"type": "integer"},
                            "email": {"maxLength": 512, "type": "string"},
                            "expand": {
                                "items": {"maxLength": 5000, "type": "string"},
                                "type": "array",
                            },
                            "invoice_settings": {
                                "type": "object",
                                "properties": {
                                    "custom_fields": {
                                        "anyOf": [
                                            {
                                                "items": {
                                                    "properties": {
                                                        "name": {"type": "string"},
                                                        "value": {"type": "string"},
                                                    },
                                                    "type": "object",
                                                },
                                                "type": "array",
                                            },
                                            {"enum": [""], "type": "string"},
                                        ]
                                    },
                                },
                            },
                            "metadata": {
                                "anyOf": [
                                    {"additionalProperties": {"type": "string"}, "type": "object"},
                                    {"enum": [""], "type": "string"},
                                ]
                            },
                            "name": {"maxLength": 256, "type": "string"},
                            "preferred_locales": {"items": {"type": "string"}, "type": "array"},
                            "tax_exempt": {
                                "enum": ["", "exempt", "none", "reverse"],
                                "type": "string",
                            },
                            "tax_id_data": {
                                "items": {
                                    "properties": {
                                        "type": {"type": "string"},
                                        "value": {"type": "string"},
                                    },
                                    "required": ["type", "value"],
                                    "type": "object",
                                },
                                "type": "array",
                            },
                        },
                    },
                }
            },
        },
        "responses": {"200": {"description": "Successful response."}},
    }
    get_customers = {
        "operationId": "GetCustomers",
        "summary": "List all customers",
        "parameters": [
            {
                "explode": True,
                "in": "query",
                "name": "created",
                "required": False,
                "schema": {
                    "anyOf": [
                        {
                            "properties": {
                                "gt": {"type": "integer"},
                                "gte": {"type": "integer"},
                                "lt": {"type": "integer"},
                            },
                            "type": "object",
                        },
                        {"type": "integer"},
                    ]
                },
                "style": "deepObject",
            },
            {
                "in": "query",
                "name": "email",
                "required": False,
                "schema": {"type": "string"},
                "style": "form",
            },
            {
                "explode": True,
                "in": "query",
                "name": "expand",
                "required": False,
                "schema": {"items": {"type": "string"}, "type": "array"},
                "style": "deepObject",
            },
            {"in": "query", "name": "limit", "schema": {"type": "integer"}, "style": "form"},
        ],
        "responses": {"200": {"description": "Successful response."}},
    }
    return {
        "openapi": "3.0.0",
        "info": {"title": "Stripe-style API", "version": "2024-06-20"},
        "servers": [{"url": server}],
        "security": [{"basicAuth": []}, {"bearerAuth": []}],
        "components": {
            "securitySchemes": {
                "basicAuth": {"scheme": "basic", "type": "http"},
                "bearerAuth": {"bearerFormat": "auth-scheme", "scheme": "bearer", "type": "http"},
            }
        },
        "paths": {"/v1/customers": {"get": get_customers, "post": post_customers}},
    }
