"""Broken copies of tests/fixtures/basic, one mistake each, for the coach's tools."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from drip.links import Links
from drip.lint import Finding, lint
from drip.render import Sender
from drip.tokens import Signer
from tests.conftest import FIXTURES

SENDER = Sender(name="Dayna", email="coach@example.com",
                postal_address="Dayna's Running Lab, 1 Test Street, Springfield, OR 97477, USA")
LINKS = Links("https://drip.test", Signer("test-secret-key"))

Edit = Callable[[Path], None]


def replace(relative: str, old: str, new: str) -> Edit:
    """An edit that replaces `old` (which must be there) with `new` in one file."""

    def edit(root: Path) -> None:
        path = root / relative
        text = path.read_text()
        assert old in text, f"{old!r} is not in {relative}"
        path.write_text(text.replace(old, new, 1))

    return edit


@pytest.fixture
def broken(tmp_path: Path) -> Callable[..., Path]:
    """A fresh copy of the basic fixture with the edits applied; returns its folder."""

    def make(*edits: Edit) -> Path:
        root = tmp_path / "project"
        shutil.copytree(FIXTURES / "basic", root)
        for edit in edits:
            edit(root)
        return root

    return make


def lint_project(root: Path, **kwargs: object) -> list[Finding]:
    return lint(root / "sequences", root / "templates", SENDER, LINKS, **kwargs)  # type: ignore[arg-type]
