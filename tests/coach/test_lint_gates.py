"""`drip lint` on gates, reminders, nudge rules and exercises: each finding in its own broken
copy of tests/fixtures/gated, with the file, the line and a fix."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from drip.lint import Finding, errors_in
from tests.coach.conftest import Edit, lint_project, replace
from tests.conftest import FIXTURES

YAML = "sequences/gated.yaml"
EXERCISES = "sequences/exercises.yaml"
WEEK = "templates/gated/week.md.j2"
WAITING = "templates/gated/waiting.md.j2"
Gated = Callable[..., Path]

GATE_2 = """      gate: true
      no_answer: hold
      remind_after: 5 days
    repeat:
      subject: Week 2 again"""


@pytest.fixture
def gated(tmp_path: Path) -> Gated:
    """A fresh copy of the gated fixture (layouts copied, not linked) with the edits applied."""

    def make(*edits: Edit) -> Path:
        root = tmp_path / "project"
        shutil.copytree(FIXTURES / "gated", root)  # follows the layout symlinks
        for edit in edits:
            edit(root)
        return root

    return make


def one(findings: list[Finding], severity: str) -> Finding:
    found = [f for f in findings if f.severity == severity]
    assert len(found) == 1, "\n".join(str(f) for f in findings)
    assert found[0].fix
    return found[0]


def test_the_gated_fixture_is_clean(gated: Gated) -> None:
    assert lint_project(gated()) == []


def test_a_gate_that_advances_on_silence_is_a_warning_at_its_no_answer_line(
        gated: Gated) -> None:
    root = gated(replace(YAML, GATE_2, GATE_2.replace("no_answer: hold", "no_answer: advance")))
    findings = lint_project(root)
    warning = one(findings, "warning")
    assert warning.file.endswith(YAML) and warning.line == 44
    assert "gate" in warning.message and "silence" in warning.message
    assert "no_answer: hold" in (warning.fix or "")
    assert not errors_in(findings)


def test_a_gate_without_its_own_rule_points_at_gate_true(gated: Gated) -> None:
    root = gated(replace(YAML, GATE_2, GATE_2.replace("      no_answer: hold\n", "")))
    warning = one(lint_project(root), "warning")
    assert warning.line == 43 and "the sequence's no_answer" in warning.message


def test_a_hold_step_without_a_waiting_email_is_an_error(gated: Gated) -> None:
    root = gated(replace(YAML, """    waiting:
      subject: Week 2, one more week
      preheader: The program waits for your answer
      template: gated/waiting.md.j2
""", ""))
    error = one(lint_project(root), "error")
    assert error.file.endswith(YAML) and error.line == 33  # the step's key
    assert "no 'waiting:' email" in error.message and "waiting:" in (error.fix or "")


def test_silence_meaning_repeat_without_a_repeat_email(gated: Gated) -> None:
    root = gated(replace(YAML, """      passing: Passing means no pain.
    repeat:
      subject: Week 3 again
      preheader: The third week, again
      template: gated/repeat.md.j2
""", """      passing: Passing means no pain.
      no_answer: repeat
"""))
    warning = one(lint_project(root), "warning")
    assert warning.file.endswith(YAML) and warning.line == 63
    assert "no 'repeat:' email" in warning.message


def test_a_reminder_with_no_reminder_email_is_an_error(gated: Gated) -> None:
    root = gated(replace(YAML, """checkpoint_reminder:
  subject: "A quick question about week {{ step.week }}"
  preheader: One tap tells me how it went.
  template: gated/reminder.md.j2
""", ""))
    findings = errors_in(lint_project(root))
    assert {f.line for f in findings} == {41, 74}  # each remind_after line
    assert all("no 'checkpoint_reminder:' email" in f.message for f in findings)


def test_a_reminder_after_the_next_email_is_an_error(gated: Gated) -> None:
    root = gated(replace(YAML, GATE_2, GATE_2.replace("5 days", "8 days")))
    error = one(lint_project(root), "error")
    assert error.file.endswith(YAML) and error.line == 45
    assert "remind_after" in error.message


def test_more_offers_placed_than_the_cap_allows(gated: Gated) -> None:
    root = gated(replace(YAML, "  max_per_enrollment: 2", "  max_per_enrollment: 1"))
    warning = one(lint_project(root), "warning")
    assert warning.file.endswith(YAML) and warning.line == 39  # week-2's nudge line
    assert "max_per_enrollment is 1" in warning.message


def test_an_offer_link_in_a_waiting_email_is_an_error(gated: Gated) -> None:
    root = gated(replace(WAITING, "Keep doing this week's plan.",
                         "Keep doing this week's plan.\n\n"
                         "Or [book Offer A](https://www.example.com/a)."))
    error = one(lint_project(root), "error")
    assert "https://www.example.com/a" in error.message or "offer" in error.message.lower()
    assert error.file.endswith(YAML) or error.file.endswith(WAITING)


def test_a_template_naming_an_unknown_exercise_at_its_line(gated: Gated) -> None:
    root = gated(replace(WEEK, 'exercise("bridge-hold"', 'exercise("bridge-holt"'))
    findings = lint_project(root)
    error = [f for f in errors_in(findings) if f.file.endswith(WEEK)]
    assert len(error) == 1 and error[0].line == 5, "\n".join(map(str, findings))
    assert "There is no exercise 'bridge-holt'" in error[0].message
    assert "Did you mean 'bridge-hold'?" in error[0].message


def test_an_exercise_named_by_a_variable_is_an_error(gated: Gated) -> None:
    root = gated(replace(WEEK, 'exercise("bridge-hold"', 'exercise(step.key'))
    findings = [f for f in errors_in(lint_project(root)) if f.file.endswith(WEEK)]
    assert findings and findings[0].line == 5
    assert "key as its first argument" in findings[0].message


def test_an_unused_exercise_is_a_warning(gated: Gated) -> None:
    root = gated(replace(EXERCISES, "exercises:\n", """exercises:
  - key: nordic
    name: Nordic curl
"""))
    warning = one(lint_project(root), "warning")
    assert warning.file.endswith(EXERCISES) and warning.line == 2
    assert "'nordic'" in warning.message


def test_a_mistake_in_exercises_yaml_names_its_line(gated: Gated) -> None:
    root = gated(replace(EXERCISES, "    dose_notes:", "    dose_note:"))
    error = one(lint_project(root), "error")
    assert error.file.endswith(EXERCISES) and error.line == 8
    assert "dose_note" in error.message
