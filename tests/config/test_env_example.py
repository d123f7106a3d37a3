from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_env_example_documents_every_variable_the_settings_read() -> None:
    read = set()
    for settings_file in (ROOT / "config" / "settings").glob("*.py"):
        read |= set(re.findall(r'env_\w+\(\s*"([A-Z0-9_]+)"', settings_file.read_text()))
    documented = set(re.findall(r"^#?\s*([A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert read, "no env_* calls found: the pattern no longer matches the settings"
    assert sorted(read - documented) == []
