"""`drip lint` on split tests and the holdout: each mistake named at its line with the fix,
and every variant rendered as the step's email would be."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from drip.lint import Finding
from tests.coach.conftest import lint_project
from tests.conftest import FIXTURES

YAML = "sequences/split.yaml"


def project(tmp_path: Path, old: str = "", new: str = "") -> Path:
    root = tmp_path / "project"
    shutil.copytree(FIXTURES / "experiments", root)
    if old:
        path = root / YAML
        text = path.read_text()
        assert old in text
        path.write_text(text.replace(old, new, 1))
    return root


def errors(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "error"]


def line(root: Path, text: str) -> int:
    return (root / YAML).read_text().splitlines().index(text) + 1


def test_the_fixture_is_clean(tmp_path: Path) -> None:
    assert lint_project(project(tmp_path)) == []


def test_a_missing_variant_template_is_named_at_its_line(tmp_path: Path) -> None:
    root = project(tmp_path, "template: split/week-b.md.j2", "template: split/week-c.md.j2")
    (finding,) = errors(lint_project(root))
    assert "week-1 (test week-1-subject, variant b)" in finding.message
    assert "split/week-c.md.j2" in finding.message and "does not exist" in finding.message
    assert finding.line == line(root, "          template: split/week-c.md.j2")


def test_a_variant_subject_that_does_not_render_is_named(tmp_path: Path) -> None:
    root = project(tmp_path, '"Your first week, {{ subscriber.first_name }}: two holds"',
                   '"Your first week, {{ subscriber.frist_name }}"')
    found = errors(lint_project(root))
    assert found, "a broken variant subject must be reported"
    assert any("frist_name" in f.message and f.line == line(
        root, '          subject: "Your first week, {{ subscriber.frist_name }}"')
        for f in found), found


def test_a_variant_template_that_does_not_render_is_named(tmp_path: Path) -> None:
    root = project(tmp_path)
    (root / "templates/split/week-b.md.j2").write_text("Hi {{ runner.name }},\n")
    found = errors(lint_project(root))
    assert any("runner" in f.message and str(f.file).endswith("week-b.md.j2") for f in found)


@pytest.mark.parametrize(("old", "new", "says"), [
    ("    test:\n      name: week-1-subject", "    test:\n      name: Week 1",
     "lower-case letters"),
    ("      metric: checkpoint_answered", "      metric: opened", "checkpoint_answered"),
    ("        - key: b\n", "        - key: a\n", "used twice"),
    ("        - key: a            # the step's own email: the control\n",
     "        - key: a\n          weight: 3\n", "Give every variant a weight, or none"),
    ("      min_per_variant: 20", "      min_per_variant: 5", "greater than or equal to 20"),
    ("  holdout: 0.2", "  holdout: 0.9", "less than or equal to 0.5"),
    ("      winner: auto", "      winner: yes", "auto"),
])
def test_a_mistake_in_a_test_is_named_with_its_fix(tmp_path: Path, old: str, new: str,
                                                   says: str) -> None:
    root = project(tmp_path, old, new)
    found = errors(lint_project(root))
    assert found and any(says in f"{f.message} {f.fix}" for f in found), found
    assert all(f.line is not None for f in found)


def test_a_checkpoint_metric_needs_a_checkpoint(tmp_path: Path) -> None:
    root = project(tmp_path, """    checkpoint:
      question: Did week 1 go well?
      passing: Passing means no pain.
""", "")
    (finding,) = errors(lint_project(root))
    assert "no checkpoint to answer" in finding.message
    assert finding.line == line(root, "      metric: checkpoint_answered")


def test_preview_shows_a_test_variant_and_names_the_ones_there_are(tmp_path: Path) -> None:
    from drip.errors import NotFound
    from drip.render import Renderer
    from drip.samples import render_sample
    from drip.sequence import load_library
    from tests.coach.conftest import LINKS, SENDER

    root = project(tmp_path)
    library = load_library(root / "sequences")
    renderer = Renderer(root / "templates", library, SENDER)
    b = render_sample(library, renderer, SENDER, LINKS, "split", "week-1", test_variant="b")
    own = render_sample(library, renderer, SENDER, LINKS, "split", "week-1")
    assert b.subject() == "Your first week, Alexandra: two holds"
    assert own.subject() == "Week 1 for Alexandra"
    assert "https://www.example.com/video" in b.html()
    assert "https://www.example.com/video" not in own.html()
    with pytest.raises(NotFound, match="its test's variants are a, b"):
        render_sample(library, renderer, SENDER, LINKS, "split", "week-1", test_variant="c")
    with pytest.raises(NotFound, match="no 'test:' block"):
        render_sample(library, renderer, SENDER, LINKS, "split", "week-2", test_variant="b")
