"""drip reads the newest migration without alembic; it must name the same one alembic does."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from alembic.util import CommandError

from drip.db import MIGRATIONS, head_revision


def migration(revision: str, parent: str | None, extra: str = "") -> str:
    return (f'"""{revision}"""\nfrom alembic import op\n\nrevision = {revision!r}\n'
            f"down_revision = {parent!r}\n{extra}\n\ndef upgrade() -> None:\n    pass\n")


def folder(tmp_path: Path, files: dict[str, str]) -> Path:
    versions = tmp_path / "migrations" / "versions"
    versions.mkdir(parents=True)
    for name, source in files.items():
        (versions / name).write_text(source)
    return versions.parent


def alembic_head(location: Path) -> str:
    return ScriptDirectory(str(location)).get_current_head() or ""


def test_drips_own_migrations() -> None:
    assert head_revision() == alembic_head(MIGRATIONS) != ""


def test_a_copy_with_a_newer_migration(tmp_path: Path) -> None:
    location = tmp_path / "copy"
    shutil.copytree(MIGRATIONS, location, ignore=shutil.ignore_patterns("__pycache__"))
    newest = alembic_head(MIGRATIONS)
    (location / "versions" / "9999_next.py").write_text(migration("9999", newest))
    assert head_revision(location) == alembic_head(location) == "9999"


@pytest.mark.parametrize("files", [
    # a merge: one head with two parents
    {"a.py": migration("a", None), "b.py": migration("b", "a"), "c.py": migration("c", "a"),
     "d.py": migration("d", ("b", "c"))},
    # labels and dependencies
    {"a.py": migration("a", None), "b.py": migration("b", "a", "branch_labels = ('x',)")},
    # a revision computed rather than written out
    {"a.py": migration("a", None), "b.py": migration("b", "a", "revision = 'b' + ''")},
    # annotated names, as newer alembic templates write them
    {"a.py": migration("a", None),
     "b.py": 'revision: str = "b"\ndown_revision: str | None = "a"\n'},
    # files alembic does not load
    {"a.py": migration("a", None), "__init__.py": migration("z", "a"),
     ".#b.py": migration("y", "a"), "notes.txt": "revision = 'x'"},
])
def test_the_same_head_as_alembic(tmp_path: Path, files: dict[str, str]) -> None:
    location = folder(tmp_path, files)
    assert head_revision(location) == alembic_head(location)


def test_two_heads_are_refused_as_alembic_refuses_them(tmp_path: Path) -> None:
    location = folder(tmp_path, {"a.py": migration("a", None), "b.py": migration("b", "a"),
                                 "c.py": migration("c", "a")})
    with pytest.raises(CommandError, match="multiple heads"):
        head_revision(location)
