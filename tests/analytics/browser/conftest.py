"""The live Daphne server and Chromium of tests/browser, reused for this package (its fixtures
are package-scoped: Playwright's loop must not outlive the browser tests, so these live in a
package of their own)."""

from __future__ import annotations

from _pytest.fixtures import FixtureFunctionDefinition

import tests.browser.conftest as shared

# Every fixture of tests/browser/conftest.py (public or not), whatever it is named today.
globals().update(
    {
        name: value
        for name, value in vars(shared).items()
        if isinstance(value, FixtureFunctionDefinition)
    }
)
