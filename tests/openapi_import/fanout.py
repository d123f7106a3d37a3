"""A generated spec whose schemas reference each other in a diamond fan-out (issue 13 item 15).

``levels`` levels of ``width`` schemas; every schema of a level has one property per schema of
the next level, so inlining one top schema writes ``width ** levels`` leaves while the document
stays small (about 22 KB with the defaults). ``operations`` POST operations each take a top
schema as their body.
"""

from __future__ import annotations

import json
from typing import Any


def fanout_spec(*, levels: int = 9, width: int = 6, operations: int = 24) -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for level in range(levels):
        for index in range(width):
            if level == levels - 1:
                schemas[f"L{level}N{index}"] = {"type": "string", "maxLength": 20}
                continue
            schemas[f"L{level}N{index}"] = {
                "type": "object",
                "required": ["p0"],
                "properties": {
                    f"p{j}": {"$ref": f"#/components/schemas/L{level + 1}N{j}"}
                    for j in range(width)
                },
            }
    paths = {
        f"/things{n}": {
            "post": {
                "operationId": f"createThing{n}",
                "summary": f"Create thing {n}",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": f"#/components/schemas/L0N{n % width}"}
                        }
                    },
                },
                "responses": {"200": {"description": "ok"}},
            }
        }
        for n in range(operations)
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "Fan-out", "version": "1"},
        "servers": [{"url": "https://fanout.example.com"}],
        "paths": paths,
        "components": {"schemas": schemas},
    }


def fanout_bytes(**kwargs: Any) -> bytes:
    return json.dumps(fanout_spec(**kwargs)).encode()
