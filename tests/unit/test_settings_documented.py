"""Every server setting is documented in the README, under the name the server uses."""

from __future__ import annotations

from pathlib import Path

from coordinator.config import SETTINGS

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_setting_has_a_row_in_the_readme() -> None:
    text = README.read_text()
    missing = [setting.name for setting in SETTINGS if f"`{setting.name}`" not in text]
    assert missing == []
