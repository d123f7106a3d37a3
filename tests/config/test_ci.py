"""`.ci/run` runs the suite on both shapes the README offers, so neither can regress unseen."""

from __future__ import annotations

import re

from django.conf import settings


def _commands() -> list[str]:
    text = (settings.BASE_DIR / ".ci" / "run").read_text()
    # Join continued lines, drop comments: one shell command per entry.
    joined = re.sub(r"\\\n\s*", " ", text)
    return [
        line.strip()
        for line in joined.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def test_ci_lints_once_and_tests_both_shapes() -> None:
    commands = _commands()
    assert [c for c in commands if c.endswith("make lint")] == ["make lint"]
    tests = [c for c in commands if c.endswith("make test")]
    assert len(tests) == 2
    embedded, services = tests
    # First the embedded default: no services at all, and the browser tests may not skip.
    for variable in ("DATABASE_URL", "REDIS_URL", "ACTIONDESK_REQUIRE_SERVICES"):
        assert f"-u {variable}" in embedded
    assert "ACTIONDESK_REQUIRE_BROWSER=1" in embedded
    # Then PostgreSQL and Redis, where nothing that needs them may skip.
    assert services.startswith('env "${services[@]}"')
    text = (settings.BASE_DIR / ".ci" / "run").read_text()
    block = text[text.index("services=(") : text.index(")", text.index("services=("))]
    assert 'DATABASE_URL="postgres://' in block and 'REDIS_URL="redis://' in block
    assert "ACTIONDESK_REQUIRE_SERVICES=1" in block
