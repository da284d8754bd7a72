"""The README starts with the two commands and documents every setting drip reads."""

from __future__ import annotations

import re

from drip.settings import VARIABLES
from tests.conftest import ROOT


def test_readme_starts_with_exactly_two_commands() -> None:
    text = (ROOT / "README.md").read_text()
    fresh = text.split("## On a fresh machine", 1)[1].split("\n## ", 1)[0]
    assert re.findall(r"```sh\n(.*?)\n```", fresh, flags=re.S) == ["./dev demo", "./dev test"]
    assert "./dev test" in (ROOT / ".ci" / "run").read_text()


def test_every_setting_is_in_the_readme() -> None:
    text = (ROOT / "README.md").read_text()
    missing = [name for name in VARIABLES if f"`{name}`" not in text]
    assert missing == []
