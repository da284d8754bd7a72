"""`drip lint` catches each kind of mistake, each in its own broken copy of the basic fixture,
naming the file, the line, what is wrong and the fix; the shipped sequences lint clean."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from drip.lint import Finding, errors_in, lint
from tests.coach.conftest import LINKS, SENDER, lint_project, replace
from tests.conftest import ROOT

Broken = Callable[..., Path]
YAML = "sequences/basic.yaml"
WEEK = "templates/basic/week.md.j2"
HTML = "templates/layout.html.j2"
TEXT = "templates/layout.txt.j2"


def only(findings: list[Finding], severity: str = "error") -> Finding:
    """The one finding of that severity; every finding names a file and carries a fix."""
    matching = [f for f in findings if f.severity == severity]
    assert len(matching) == 1, "\n".join(str(f) for f in findings)
    assert matching[0].fix
    return matching[0]


def test_the_basic_fixture_is_clean(broken: Broken) -> None:
    assert lint_project(broken()) == []


def test_the_shipped_sequences_lint_clean() -> None:
    found = lint(ROOT / "sequences", ROOT / "templates", SENDER, LINKS)
    assert found == [], "\n".join(str(f) for f in found)


def test_an_unknown_key(broken: Broken) -> None:
    root = broken(replace(YAML, "    week: 2\n", "    week: 2\n    subjet: Typo\n"))
    finding = only(lint_project(root))
    assert finding.file.endswith(YAML) and finding.line == 19
    assert "'subjet' is not a known field" in finding.message
    assert "steps.1.subjet" in finding.message


def test_schema_errors_are_all_reported(broken: Broken) -> None:
    root = broken(replace(YAML, "    week: 2\n", "    week: two\n"),
                  replace(YAML, "send_after: 1 week\n    subject: Week 3",
                          "send_after: soon\n    subject: Week 3"))
    found = errors_in(lint_project(root))
    assert [(f.line, f.message.split(":")[0]) for f in found] == [
        (18, "steps.1.week"), (25, "steps.2.send_after")]


def test_a_missing_template(broken: Broken) -> None:
    root = broken(replace(YAML, "    template: basic/week.md.j2\n  - key: week-3",
                          "    template: basic/week2.md.j2\n  - key: week-3"))
    finding = only(lint_project(root))
    assert finding.file.endswith(YAML) and finding.line == 22
    assert "'basic/week2.md.j2' does not exist" in finding.message
    assert "week-2 (main)" in finding.message


def test_an_unused_template(broken: Broken) -> None:
    def extra(root: Path) -> None:
        (root / "templates" / "basic" / "old-week.md.j2").write_text("Hi\n")

    found = lint_project(broken(extra))
    assert errors_in(found) == []
    finding = only(found, "warning")
    assert finding.file.endswith("templates/basic/old-week.md.j2")
    assert "No sequence uses this template" in finding.message


def test_a_jinja_syntax_error_names_the_template_line(broken: Broken) -> None:
    root = broken(replace(WEEK, "## Week {{ step.week }} sessions",
                          "## Week {{ step.week } sessions"))
    finding = only(lint_project(root))
    assert finding.file.endswith(WEEK) and finding.line == 3
    assert finding.message == "Line 3 has a single } where }} should close a {{."


def test_an_undefined_variable_in_a_template(broken: Broken) -> None:
    root = broken(replace(WEEK, "Happy running,", "Happy running, {{ subscriber.last_name }}"))
    finding = only(lint_project(root))
    assert finding.file.endswith(WEEK) and finding.line == 13
    assert "last_name" in finding.message and "Unknown variable" in finding.message
    assert "subscriber.first_name" in (finding.fix or "")


def test_an_undefined_variable_only_in_the_repeat_variant(broken: Broken) -> None:
    def repeat(root: Path) -> None:
        (root / "templates" / "basic" / "repeat.md.j2").write_text(
            "Hi {{ subscriber.first_name }},\n\nAgain, week {{ step.number }}.\n")
    root = broken(repeat, replace(
        YAML, "      passing: Passing means no pain.\n",
        "      passing: Passing means no pain.\n    repeat:\n      subject: Again\n"
        "      preheader: Once more\n      template: basic/repeat.md.j2\n"))
    finding = only(lint_project(root))
    assert finding.file.endswith("templates/basic/repeat.md.j2") and finding.line == 3
    assert "number" in finding.message


def test_an_undefined_variable_in_a_subject(broken: Broken) -> None:
    root = broken(replace(YAML, "subject: Week 2", "subject: Week {{ step.number }}"))
    finding = only(lint_project(root))
    assert finding.file.endswith(YAML) and finding.line == 20
    assert "The subject does not render" in finding.message


def test_a_syntax_error_in_a_subject(broken: Broken) -> None:
    root = broken(replace(YAML, "subject: Week 3", 'subject: "Week {{ step.week "'))
    finding = only(lint_project(root))
    assert finding.file.endswith(YAML) and finding.line == 26
    assert finding.message.startswith("The subject does not render: Template syntax error")


def test_no_unsubscribe_link(broken: Broken) -> None:
    root = broken(replace(HTML, ' &middot; <a href="{{ unsubscribe_url }}">Unsubscribe</a>',
                          ""))
    finding = only(lint_project(root))
    assert finding.file.endswith(HTML) and finding.line == 78  # the </body> line
    assert "no unsubscribe link" in finding.message


def test_no_postal_address_in_the_text_part(broken: Broken) -> None:
    root = broken(replace(TEXT, "{{ postal_address }}", ""))
    finding = only(lint_project(root))
    assert finding.file.endswith(TEXT) and finding.line == 36  # the end of the layout
    assert "postal address" in finding.message


def test_an_offer_that_is_referenced_but_missing(broken: Broken) -> None:
    root = broken(replace(YAML, "    nudge: offer-a\n    checkpoint:",
                          "    nudge: offer-b\n    checkpoint:"))
    finding = only(lint_project(root))
    assert finding.file.endswith(YAML) and finding.line == 13
    assert "'offer-b' is not an offer" in finding.message
    assert "offer-a" in (finding.fix or "")


def test_an_offer_that_is_never_used(broken: Broken) -> None:
    root = broken(replace("sequences/offers.yaml", "    weeks: [1, 3]\n",
                          "    weeks: [1, 3]\n  - key: offer-z\n    name: Offer Z\n"
                          "    url: https://www.example.com/z\n    pitch: Never shown.\n"
                          "    weeks: [9]\n"))
    found = lint_project(root)
    assert errors_in(found) == []
    finding = only(found, "warning")
    assert finding.file.endswith("sequences/offers.yaml") and finding.line == 7
    assert "'offer-z' is never used" in finding.message


def test_a_relative_link_in_a_template(broken: Broken) -> None:
    root = broken(replace(WEEK, "(https://www.example.com/guide)", "(/guide)"))
    finding = only(lint_project(root))
    assert finding.file.endswith(WEEK) and finding.line == 11
    assert "'/guide' is not an absolute https:// URL" in finding.message


def test_an_http_image_in_a_template(broken: Broken) -> None:
    root = broken(replace(WEEK, "Happy running,", "![bridge](http://www.example.com/b.png)\n\n"
                                                  "Happy running,"))
    finding = only(lint_project(root))
    assert finding.file.endswith(WEEK) and finding.line == 13
    assert "The image 'http://www.example.com/b.png' is not" in finding.message


def test_an_http_link_in_an_offer(broken: Broken) -> None:
    root = broken(replace("sequences/offers.yaml", "https://www.example.com/a",
                          "http://www.example.com/a"))
    finding = only(lint_project(root))
    assert finding.file.endswith("sequences/offers.yaml") and finding.line == 4
    assert "https://" in finding.message


def test_a_long_subject(broken: Broken) -> None:
    long = "Week 2: " + "slow and steady holds, " * 4
    root = broken(replace(YAML, "subject: Week 2", f'subject: "{long}"'))
    found = lint_project(root)
    assert errors_in(found) == []
    finding = only(found, "warning")
    assert finding.file.endswith(YAML) and finding.line == 20
    assert f"The subject is {len(long.strip())} characters" in finding.message


def test_a_long_subject_counts_the_first_name(broken: Broken) -> None:
    subject = "Week 1 for {{ subscriber.first_name }}: " + "x" * 60
    root = broken(replace(YAML, '"Week 1 for {{ subscriber.first_name }}"', f'"{subject}"'))
    finding = only(lint_project(root), "warning")
    assert finding.line == 10 and "Alexandra" in finding.message


def test_an_empty_preheader(broken: Broken) -> None:
    root = broken(replace(YAML, "preheader: The second week", 'preheader: ""'))
    finding = only(lint_project(root))
    assert finding.file.endswith(YAML) and finding.line == 21
    assert "preheader" in finding.message


def test_a_preheader_that_renders_empty(broken: Broken) -> None:
    root = broken(replace(YAML, "preheader: The second week", "preheader: \"{{ '' }}\""))
    finding = only(lint_project(root))
    assert finding.line == 21 and "The preheader is empty" in finding.message


def test_a_text_part_that_lost_a_link(broken: Broken) -> None:
    root = broken(replace(TEXT, "{{ nudge.url }}\n", ""))
    finding = only(lint_project(root))
    assert finding.file.endswith(HTML) and finding.line == 65
    assert "plain-text part lost the link https://www.example.com/a" in finding.message
    assert "layout.txt.j2" in (finding.fix or "")


def test_a_text_part_that_lost_a_list_item(broken: Broken) -> None:
    root = broken(replace(HTML, '<p class="small">{{ checkpoint.passing }}</p>',
                          '<p class="small">{{ checkpoint.passing }}</p>\n'
                          "      <ul><li>Score the morning pain out of ten</li></ul>"))
    finding = only(lint_project(root))
    assert finding.file.endswith(HTML) and finding.line == 57
    assert "plain-text part lost 'Score the morning pain out of ten'" in finding.message


def test_a_text_part_that_lost_a_paragraph(broken: Broken) -> None:
    root = broken(replace(TEXT, "{{ checkpoint.passing }}\n", ""))
    finding = only(lint_project(root))
    assert finding.file.endswith(HTML) and finding.line == 56
    assert "plain-text part lost 'Passing means no pain.'" in finding.message


def test_the_command_exits_non_zero_on_an_error_and_prints_json(broken: Broken) -> None:
    root = broken(replace(WEEK, "{{ coach.name }}", "{{ coach.nickname }}"))
    command = [sys.executable, "-m", "drip", "lint", str(root), "--json", "--no-database"]
    env = {"DRIP_SECRET_KEY": "k", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["errors"] == 1
    (finding,) = report["findings"]
    assert finding["file"].endswith(WEEK) and finding["line"] == 14
    assert "nickname" in finding["message"] and finding["fix"]
    clean = subprocess.run([sys.executable, "-m", "drip", "lint", "--no-database"],
                           capture_output=True, text=True, env=env, cwd=ROOT)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "No problems" in clean.stdout


def test_a_broken_sequence_file_does_not_make_its_templates_look_unused(broken: Broken) -> None:
    def second_sequence(root: Path) -> None:
        text = (root / YAML).read_text().replace("key: basic", "key: other")
        (root / "sequences" / "other.yaml").write_text(text)
        (root / WEEK).with_name("week2.md.j2").write_text((root / WEEK).read_text())

    root = broken(second_sequence,
                  replace(YAML, "    template: basic/week.md.j2\n  - key: week-3",
                          "    template: basic/week2.md.j2\n  - key: week-3"),
                  replace(YAML, "    week: 3\n", "    week: three\n"))
    found = lint_project(root)
    assert [(f.severity, f.line) for f in found] == [("error", 24)]
