"""Every server setting is documented in the README, under the name the server uses."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from coordinator.config import SETTINGS
from coordinator.limits import Limits

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_setting_has_a_row_in_the_readme() -> None:
    text = README.read_text()
    missing = [setting.name for setting in SETTINGS if f"`{setting.name}`" not in text]
    assert missing == []


def test_every_limit_is_a_setting_with_a_row_in_the_limits_table() -> None:
    limits = [item.name for item in fields(Limits)]
    settings = {setting.name for setting in SETTINGS}
    assert [name for name in limits if name not in settings] == []
    table = README.read_text().split("### Limits", 1)[1].split("\n## ", 1)[0]
    assert [name for name in limits if f"| `{name}` |" not in table] == []
