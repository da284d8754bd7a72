"""More of the coach's mistakes that `drip lint` must report (file, line, fix, exit 1),
never crash on, and never let through to a subscriber."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from drip.lint import Finding, errors_in
from tests.coach.conftest import lint_project, replace
from tests.conftest import ROOT

Broken = Callable[..., Path]
YAML = "sequences/basic.yaml"
WEEK = "templates/basic/week.md.j2"


def only_error(findings: list[Finding]) -> Finding:
    found = errors_in(findings)
    assert len(found) == 1, "\n".join(str(f) for f in findings)
    assert found[0].fix
    return found[0]


def lint_command(root: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "drip", "lint", str(root), "--no-database"]
    env = {"DRIP_SECRET_KEY": "k", "PATH": "/usr/bin:/bin"}
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)


def test_an_unknown_filter_inside_an_if_names_the_template_line(broken: Broken) -> None:
    # Jinja2 finds a filter or test inside {% if %} only when it runs: lint used to crash
    # with a traceback (and dispatch with it) instead of pointing at the line.
    root = broken(replace(WEEK, "Happy running,",
                          "{% if step.week > 0 %}{{ step.week | ordinal }}{% endif %}\n"
                          "Happy running,"))
    finding = only_error(lint_project(root))
    assert finding.file.endswith(WEEK) and finding.line == 13
    assert "No filter named 'ordinal'" in finding.message
    done = lint_command(root)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert f"{WEEK}:13: error" in done.stdout


def test_an_unknown_test_names_the_template_line(broken: Broken) -> None:
    root = broken(replace(WEEK, "Happy running,",
                          "{% if step.week is prime %}Prime!{% endif %}\nHappy running,"))
    finding = only_error(lint_project(root))
    assert finding.file.endswith(WEEK) and finding.line == 13
    assert "No test named 'prime'" in finding.message


def test_a_template_that_fails_when_it_runs(broken: Broken) -> None:
    root = broken(replace(WEEK, "Happy running,", "{{ step.week / 0 }}\nHappy running,"))
    finding = only_error(lint_project(root))
    assert finding.file.endswith(WEEK) and finding.line == 13
    assert "ZeroDivisionError" in finding.message


def test_a_send_time_with_a_utc_offset(broken: Broken) -> None:
    # pydantic reads "06:30+10:00" as an aware time; comparing it crashed lint (TypeError)
    root = broken(replace(YAML, 'send_time: "06:30"', 'send_time: "06:30+10:00"'))
    finding = only_error(lint_project(root))
    assert finding.file.endswith(YAML) and finding.line == 4
    assert "without a UTC offset" in finding.message
    done = lint_command(root)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr


def test_a_template_that_names_a_folder(broken: Broken) -> None:
    # check_unused_templates read the folder as a file: IsADirectoryError
    root = broken(replace(YAML, "    template: basic/week.md.j2\n  - key: week-3",
                          "    template: basic\n  - key: week-3"))
    finding = only_error(lint_project(root))
    assert finding.file.endswith(YAML) and finding.line == 22
    assert "the template 'basic' does not exist" in finding.message
    done = lint_command(root)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr


def test_a_first_name_tested_with_if(broken: Broken) -> None:
    # The template sees %%first_name%% for everyone, so this branch never depends on the person
    root = broken(replace(WEEK, "Hi {{ subscriber.first_name }},",
                          "{% if subscriber.first_name == 'there' %}Hello!{% else %}"
                          "Hi {{ subscriber.first_name }},{% endif %}"))
    finding = only_error(lint_project(root))
    assert finding.file.endswith(WEEK) and finding.line == 1
    assert "'subscriber.first_name' is tested with {% if %}" in finding.message
    assert "{{ subscriber.first_name }}" in (finding.fix or "")


def test_a_first_name_through_a_filter(broken: Broken) -> None:
    # {{ subscriber.first_name | upper }} sent every subscriber "HI %%FIRST_NAME%%"
    root = broken(replace(WEEK, "Hi {{ subscriber.first_name }},",
                          "HI {{ subscriber.first_name | upper }},"))
    finding = only_error(lint_project(root))
    assert finding.file.endswith(WEEK) and finding.line == 1
    assert "'| upper'" in finding.message and "%%FIRST_NAME%%" in finding.message


def test_an_email_address_tested_in_a_subject(broken: Broken) -> None:
    root = broken(replace(YAML, "subject: Week 2",
                          "subject: \"{{ 'VIP' if subscriber.email.endswith('@vip.com') "
                          "else 'Week 2' }}\""))
    finding = only_error(lint_project(root))
    assert finding.file.endswith(YAML) and finding.line == 20
    assert finding.message.startswith("The subject: 'subscriber.email'")


def test_printing_a_first_name_is_fine(broken: Broken) -> None:
    root = broken(replace(WEEK, "Hi {{ subscriber.first_name }},",
                          "Hi {{ subscriber.first_name | e }} ({{ subscriber.email }}),"))
    assert errors_in(lint_project(root)) == []


def test_a_field_written_twice(broken: Broken) -> None:
    # YAML keeps the last of two equal keys without a word: the coach's first subject,
    # or a step's week, would vanish silently
    root = broken(replace(YAML, "    subject: Week 2\n",
                          "    subject: Week 2\n    preheader: x\n    subject: Week two\n"))
    finding = only_error(lint_project(root))
    assert finding.file.endswith(YAML) and finding.line == 22
    assert finding.message.startswith("steps.1.subject: 'subject' is written twice")
    assert "line 20" in finding.message


def catalog(text: str) -> Callable[[Path], None]:
    def write(root: Path) -> None:
        (root / "sequences" / "catalog.yaml").write_text(text)
    return write


def test_a_catalog_product_that_starts_a_missing_sequence(broken: Broken) -> None:
    # catalog.yaml is read only when the first purchase arrives: lint must read it first
    root = broken(catalog("products:\n  - key: basic\n    sequence: basik\n"))
    finding = only_error(lint_project(root))
    assert finding.file.endswith("sequences/catalog.yaml") and finding.line == 3
    assert "'basik' is not a sequence" in finding.message


def test_a_catalog_with_an_unknown_field(broken: Broken) -> None:
    root = broken(catalog("products:\n  - key: basic\n    sequence: basic\n    tagz: [a]\n"))
    finding = only_error(lint_project(root))
    assert finding.file.endswith("sequences/catalog.yaml") and finding.line == 4
    assert "'tagz' is not a known field" in finding.message


def test_a_goal_no_purchase_can_reach(broken: Broken) -> None:
    root = broken(replace(YAML, "disclaimer: Not medical advice.\n",
                          "disclaimer: Not medical advice.\ngoals:\n  - purchased: ofer-a\n"
                          "    stops: sequence\n"))
    finding = only_error(lint_project(root))
    assert finding.file.endswith(YAML) and finding.line == 7
    assert "'ofer-a' is neither a product" in finding.message and "offer-a" in (finding.fix or "")


def test_a_good_catalog_and_goal_are_clean(broken: Broken) -> None:
    root = broken(catalog("products:\n  - key: basic\n    sequence: basic\n  - key: offer-a\n"),
                  replace(YAML, "disclaimer: Not medical advice.\n",
                          "disclaimer: Not medical advice.\ngoals:\n  - purchased: offer-a\n"
                          "    stops: nudges\n"))
    assert lint_project(root) == []


def test_raw_html_left_open_in_a_template(broken: Broken) -> None:
    # Markdown passes raw HTML through: an unclosed <b> makes the rest of the email bold,
    # an unclosed <table> swallows the footer with the unsubscribe link
    root = broken(replace(WEEK, "- ribs down", "- ribs <b>down"),
                  replace(WEEK, "Happy running,", "<table><tr><td>Done!\n\nHappy running,"))
    found = [f for f in errors_in(lint_project(root)) if f.message.startswith("Raw HTML")]
    assert [(f.line, f.message) for f in found] == [
        (8, "Raw HTML: <b> is never closed."),
        (13, "Raw HTML: <table> is never closed."),
        (13, "Raw HTML: <td> is never closed."),
        (13, "Raw HTML: <tr> is never closed."),
    ]
    assert all(f.file.endswith(WEEK) and f.fix for f in found)


def test_closed_raw_html_and_a_script(broken: Broken) -> None:
    root = broken(replace(WEEK, "- ribs down", "- ribs down<br>"),
                  replace(WEEK, "Happy running,", "<script>track()</script>\nHappy running,"))
    finding = only_error(lint_project(root))
    assert finding.line == 13 and "<script> is removed by mail programs" in finding.message


def test_the_command_prints_brackets_as_written(broken: Broken) -> None:
    # findings went through Rich markup: '[words](url)' lost '[words]', and a field such as
    # '[/b]' crashed the command with MarkupError
    root = broken(replace(WEEK, "Happy running,", "<script>x</script>\nHappy running,"),
                  replace(YAML, "    week: 2\n", "    week: 2\n    \"[/b]\": 1\n"))
    done = lint_command(root)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert "'[/b]' is not a known field" in done.stdout
    assert "[words](https://...)" in done.stdout


def test_an_error_quoting_brackets_is_printed_not_crashed(tmp_path: Path) -> None:
    # fail() printed messages as Rich markup: --sequence '[/x]' crashed with MarkupError,
    # and preview's 'Wrote ...' showed /tmp/[red]x as /tmp/x
    env = {"DRIP_SECRET_KEY": "k", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "drip", "simulate", "--sequence", "[/x]"],
                          capture_output=True, text=True, env=env, cwd=ROOT)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "There is no sequence '[/x]'" in done.stderr
    out = tmp_path / "[red]x"
    done = subprocess.run([sys.executable, "-m", "drip", "preview", "week-1", "--sequence",
                           "pht-7-week", "--out", str(out)],
                          capture_output=True, text=True, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert f"Wrote {out / 'week-1-main-strength-assessment.html'}" in done.stdout.replace(
        "\n", "")


def test_every_shape_mistake_says_how_to_fix_it(broken: Broken) -> None:
    # a wrong type, a misspelled choice or a repeated key used to come without a Fix: line
    root = broken(replace(YAML, "    week: 2\n", "    week: two\n"),
                  replace(YAML, 'send_time: "06:30"', 'send_time: "06:30"\n  weekday: mondy'),
                  replace(YAML, "subject: Week 3", "subject: 3"))
    found = errors_in(lint_project(root))
    assert [f.message.split(":")[0] for f in found] == [
        "schedule.weekday", "steps.1.week", "steps.2.subject"]
    assert all(f.fix for f in found), "\n".join(str(f) for f in found)


def test_a_step_key_used_twice_says_how_to_fix_it(broken: Broken) -> None:
    twice = only_error(lint_project(broken(replace(YAML, "  - key: week-3",
                                                   "  - key: week-2"))))
    assert twice.message.startswith("steps.2.key: 'week-2' is used twice")


def test_a_later_step_that_waits_zero_days(broken: Broken) -> None:
    # '0 days' passed lint; simulate then showed week 2 at 06:30, before week 1 at 09:00
    # the same day, and dispatch sends it straight after week 1
    root = broken(replace(YAML, "    send_after: 1 week\n    subject: Week 3",
                          "    send_after: 0 days\n    subject: Week 3"))
    finding = only_error(lint_project(root))
    assert finding.file.endswith(YAML) and finding.line == 25
    assert finding.message.startswith("steps.2.send_after: A wait of 0")
    assert "'1 week'" in (finding.fix or "")


def test_a_subject_written_over_two_lines(broken: Broken, tmp_path: Path) -> None:
    # A YAML '|' block keeps the line break: lint passed it, then simulate --out and
    # test-send crashed ("Header values may not contain linefeed") on building the email
    root = broken(replace(YAML, "    subject: Week 2\n",
                          "    subject: |\n      Week 2:\n      longer holds\n"))
    assert lint_project(root) == []
    env = {"DRIP_SECRET_KEY": "k", "PATH": "/usr/bin:/bin",
           "DRIP_SEQUENCES_DIR": str(root / "sequences"),
           "DRIP_TEMPLATES_DIR": str(root / "templates")}
    out = tmp_path / "emails"
    done = subprocess.run([sys.executable, "-m", "drip", "simulate", "--sequence", "basic",
                           "--joined", "2026-03-02T09:00:00Z", "--answers", "pass,pass",
                           "--out", str(out), "--json"],
                          capture_output=True, text=True, env=env, cwd=ROOT)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert "Subject: Week 2: longer holds\n" in (out / "02-week-2-main.eml").read_text()


def test_a_variable_in_a_field_printed_as_written(broken: Broken) -> None:
    # checkpoint questions, the disclaimer, the reminder and offers' pitches are not
    # templates: '{{ subscriber.first_name }}' there reached subscribers as written
    root = broken(replace(YAML, "question: Did week 1 go well?",
                          "question: Did week 1 go well, {{ subscriber.first_name }}?"),
                  replace("sequences/offers.yaml", "pitch: A fine offer.",
                          "pitch: A fine offer for week {{ step.week }}."))
    found = errors_in(lint_project(root))
    assert [(Path(f.file).name, f.line, f.message.split(":")[0]) for f in found] == [
        ("basic.yaml", 15, "steps.0.checkpoint.question"),
        ("offers.yaml", 5, "offers.0.pitch"),
    ]
    assert all("printed exactly as written" in f.message and f.fix for f in found)


def test_an_http_base_url_is_blamed_on_the_setting(broken: Broken) -> None:
    # settings accept http:// (for local use); lint then blamed layout.html.j2 for each
    # unsubscribe, pause and checkpoint link, telling the coach to edit the template
    from drip.links import Links
    from drip.lint import lint
    from drip.tokens import Signer
    from tests.coach.conftest import SENDER

    root = broken()
    found = lint(root / "sequences", root / "templates", SENDER,
                 Links("http://drip.test", Signer("k")))
    finding = only_error(found)
    assert finding.file == "DRIP_BASE_URL" and "https://" in (finding.fix or "")
    assert "DRIP_BASE_URL is http://drip.test" in finding.message


def test_an_empty_template(broken: Broken) -> None:
    def empty(root: Path) -> None:
        (root / WEEK).write_text("{# to be written #}\n\n")

    finding = only_error(lint_project(broken(empty)))
    assert finding.file.endswith(WEEK) and finding.line == 1
    assert "The template is empty" in finding.message


def test_a_week_written_as_yes(broken: Broken) -> None:
    # YAML reads `week: yes` as true, which pydantic took for week 1
    root = broken(replace(YAML, "    week: 2\n", "    week: yes\n"))
    finding = only_error(lint_project(root))
    assert finding.file.endswith(YAML) and finding.line == 18
    assert "valid integer" in finding.message and "whole number" in finding.fix
