"""`drip init DIR`, the real command: a new coach's project that `drip lint` passes as
created, whose sample sequence previews and simulates, and that refuses to overwrite."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def drip(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`drip ARGS` in `cwd` with no DRIP_* variable set, as on a new coach's laptop."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIP_")}
    return subprocess.run([sys.executable, "-m", "drip", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


def test_a_new_project_passes_lint_as_created(tmp_path: Path) -> None:
    made = drip("init", "coach-site", cwd=tmp_path)
    assert made.returncode == 0, made.stdout + made.stderr
    project = tmp_path / "coach-site"
    files = sorted(str(p.relative_to(project)) for p in project.rglob("*") if p.is_file())
    assert files == [".env.example", "sequences/catalog.yaml", "sequences/my-program.yaml",
                     "sequences/offers.yaml", "templates/layout.html.j2",
                     "templates/layout.txt.j2", "templates/my-program/week-1.md.j2",
                     "templates/my-program/week-2.md.j2", "templates/my-program/week-3.md.j2"]
    assert "drip lint" in made.stdout
    linted = drip("lint", "--json", cwd=project)
    assert linted.returncode == 0, linted.stdout + linted.stderr
    assert '"findings": []' in linted.stdout, linted.stdout
    assert "No problems in sequences and templates." in drip("lint", cwd=project).stdout
    # the sample is a real sequence of three weekly steps, as simulate walks it
    walked = drip("simulate", "--sequence", "my-program", cwd=project)
    assert walked.returncode == 0, walked.stdout + walked.stderr
    for step in ("week-1", "week-2", "week-3"):
        assert step in walked.stdout, walked.stdout
    env = (project / ".env.example").read_text()
    assert "DRIP_DATABASE_URL=sqlite:///var/drip.db" in env and "DRIP_SECRET_KEY=" in env


def test_a_project_is_never_written_over(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    refused = drip("init", "taken", cwd=tmp_path)
    assert refused.returncode == 4, refused.stdout + refused.stderr
    assert "not an empty folder" in refused.stdout + refused.stderr
    assert [p.name for p in (tmp_path / "taken").iterdir()] == ["notes.txt"]


def test_the_layouts_are_the_shipped_ones() -> None:
    # one layout to maintain: the project's copy may not drift from templates/
    for name in ("layout.html.j2", "layout.txt.j2"):
        assert (ROOT / "drip" / "project" / "templates" / name).read_text() == (
            ROOT / "templates" / name).read_text()
