"""`drip lint` on tags: a goal or a branch that reads a tag nothing can set is reported with
its file and line; a tag set by the catalog, a checkpoint answer or manual_tags is not."""

from __future__ import annotations

import shutil
from pathlib import Path

from drip.lint import errors_in
from tests.coach.conftest import lint_project
from tests.conftest import FIXTURES

YAML = "sequences/tagged.yaml"


def tagged_copy(tmp_path: Path, old: str, new: str) -> Path:
    root = tmp_path / "project"
    shutil.copytree(FIXTURES / "tagged", root)
    path = root / YAML
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return root


def line_with(root: Path, needle: str) -> int:
    lines = (root / YAML).read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if needle in line)


def test_the_tagged_fixture_is_clean() -> None:
    assert errors_in(lint_project(FIXTURES / "tagged")) == []


def test_a_goal_on_a_tag_nothing_sets_names_its_line(tmp_path: Path) -> None:
    root = tagged_copy(tmp_path, "manual_tags: [clinician-referral]", "manual_tags: []")
    found = errors_in(lint_project(root))
    assert len(found) == 1, found
    assert found[0].file.endswith(YAML)
    assert found[0].line == line_with(root, "- tag: clinician-referral")
    assert "nothing ever sets the tag 'clinician-referral'" in found[0].message
    assert "manual_tags" in (found[0].fix or "")


def test_a_branch_on_a_tag_nothing_sets_names_its_line(tmp_path: Path) -> None:
    root = tagged_copy(tmp_path, "when: {tag: struggling}", "when: {tag: strugling}")
    found = errors_in(lint_project(root))
    assert len(found) == 1, found
    assert found[0].line == line_with(root, "when: {tag: strugling}")
    assert "branch" in found[0].message and "'strugling'" in found[0].message


def test_a_catalog_tag_counts_as_set(tmp_path: Path) -> None:
    root = tagged_copy(tmp_path, "- tag: clinician-referral", "- tag: program-customer")
    assert errors_in(lint_project(root)) == []


def test_a_bad_schedule_names_the_field_and_line(tmp_path: Path) -> None:
    root = tagged_copy(tmp_path, 'send_time: "07:00"', 'send_time: "20:30"')
    found = errors_in(lint_project(root))
    assert len(found) == 1, found
    assert found[0].message.startswith("schedule.send_time")
    assert found[0].line == line_with(root, 'send_time: "20:30"')
    assert "inside the window 06:00-20:00" in found[0].message
    root = tagged_copy(tmp_path / "b", "days: [mon, tue, wed, thu, fri, sat]",
                       "days: [mon, funday]")
    found = errors_in(lint_project(root))
    assert len(found) == 1 and found[0].message.startswith("schedule.days"), found


def test_a_goal_with_both_a_product_and_a_tag_is_refused(tmp_path: Path) -> None:
    root = tagged_copy(tmp_path, "  - tag: clinician-referral\n",
                       "  - tag: clinician-referral\n    purchased: tagged\n")
    found = errors_in(lint_project(root))
    assert len(found) == 1 and "either 'purchased: PRODUCT' or 'tag: TAG'" in found[0].message


def test_a_branch_template_that_fails_names_its_own_file(tmp_path: Path) -> None:
    root = tagged_copy(tmp_path, "template: tagged/gentle.md.j2", "template: tagged/gentle.md.j2")
    gentle = root / "templates" / "tagged" / "gentle.md.j2"
    gentle.write_text(gentle.read_text() + "\n{{ step.week / 0 }}\n")
    found = errors_in(lint_project(root))
    assert len(found) == 1, found
    assert found[0].file.endswith("templates/tagged/gentle.md.j2")
    assert "ZeroDivisionError" in found[0].message
