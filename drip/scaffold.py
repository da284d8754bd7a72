"""`drip init DIR`: a new coach's project, ready to edit: a three-step sample sequence, the
email layouts, offers, a catalog and an example environment (the files in drip/project)."""

from __future__ import annotations

import shutil
from pathlib import Path

from drip.errors import Conflict

PROJECT = Path(__file__).resolve().parent / "project"
#: Files kept under another name in the package: setuptools leaves dotfiles out.
RENAMED = {"env.example": ".env.example"}


def scaffold(target: Path) -> list[Path]:
    """Write the sample project into `target` (new or empty); the files written, in order."""
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise Conflict(f"{target} already exists and is not an empty folder; name a new "
                       "folder for the project.")
    written = []
    for source in sorted(p for p in PROJECT.rglob("*") if p.is_file()
                         and "__pycache__" not in p.parts):
        relative = source.relative_to(PROJECT)
        destination = target / relative.with_name(RENAMED.get(relative.name, relative.name))
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, destination)
        written.append(destination)
    return written
