"""Parse errors at the line where the coach's mistake starts, in plain words with the fix.

Each file in tests/fixtures/mistakes is one broken copy of the basic fixture's sequence or
week template; its first line says where lint must point and what it must say."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from drip.lint import Finding, errors_in
from tests.coach.conftest import lint_project, replace
from tests.coach.test_lint_mistakes import lint_command
from tests.conftest import FIXTURES

Broken = Callable[..., Path]
MISTAKES = FIXTURES / "mistakes"
YAML = "sequences/basic.yaml"
WEEK = "templates/basic/week.md.j2"
#: PyYAML's and Jinja2's own words, which say where they gave up, not what is wrong.
PARSER_WORDS = ("<block end>", "<scalar>", "expected token", "Unexpected end of template",
                "Jinja was looking for", "does not parse")


def fixtures() -> list[Path]:
    return sorted(p for p in MISTAKES.iterdir() if p.suffix in (".yaml", ".j2"))


def expected(path: Path) -> tuple[int, str]:
    match = re.match(r"^(?:#|\{#) expect: line (\d+): (.+?)(?: #\})?$",
                     path.read_text(encoding="utf-8").splitlines()[0])
    assert match, f"{path.name} does not start with its expectation"
    return int(match.group(1)), match.group(2)


def use(fixture: Path) -> Callable[[Path], None]:
    """An edit that puts `fixture` in place of the file it is a broken copy of."""

    def edit(root: Path) -> None:
        shutil.copy(fixture, root / (YAML if fixture.suffix == ".yaml" else WEEK))

    return edit


@pytest.mark.parametrize("fixture", fixtures(), ids=lambda p: p.name)
def test_each_mistake_is_reported_once_where_it_starts(broken: Broken, fixture: Path) -> None:
    line, words = expected(fixture)
    found = errors_in(lint_project(broken(use(fixture))))
    assert len(found) == 1, "\n".join(str(f) for f in found)
    (finding,) = found
    assert finding.file.endswith(YAML if fixture.suffix == ".yaml" else WEEK)
    assert (finding.line, words in finding.message) == (line, True), str(finding)
    assert finding.fix and not any(w in str(finding) for w in PARSER_WORDS), str(finding)


def test_the_command_reports_an_unclosed_quote_at_its_line(broken: Broken) -> None:
    done = lint_command(broken(use(MISTAKES / "unclosed-quote.yaml")))
    assert done.returncode == 1, done.stderr
    said = " ".join(done.stdout.split())
    assert f"{YAML}:21: error: The double quote (\") that opens the value on line 21 is never " \
           "closed, so YAML reads everything from there to the next \" on line 27" in said
    assert 'Fix: end the value on line 21 with a closing "' in said


def test_a_misspelt_field_is_one_error_with_a_suggestion(broken: Broken) -> None:
    root = broken(replace(YAML, "      question: Did week 1 go well?",
                          "      questoin: Did week 1 go well?"),
                  replace(YAML, "    send_after: 1 week\n    subject: Week 2",
                          "    sendafter: 1 week\n    subject: Week 2"))
    found = errors_in(lint_project(root))
    assert [(f.line, f.message, f.fix) for f in found] == [
        (15, "steps.0.checkpoint.questoin: 'questoin' is not a known field. Did you mean "
             "'question'?", "rename it to 'question:' (or remove it)"),
        (19, "steps.1.sendafter: 'sendafter' is not a known field. Did you mean 'send_after'?",
         "rename it to 'send_after:' (or remove it)")]


def test_an_unknown_field_lists_the_fields_of_its_block(broken: Broken) -> None:
    root = broken(replace(YAML, "      passing: Passing means no pain.\n",
                          "      passing: Passing means no pain.\n      colour: red\n"))
    (finding,) = errors_in(lint_project(root))
    assert finding.line == 17 and finding.message.endswith("'colour' is not a known field.")
    assert (finding.fix or "").startswith("remove it, or check its spelling: the fields here "
                                          "are question, passing, no_answer, gate")


def test_a_broken_offers_file_hides_no_other_finding(broken: Broken) -> None:
    # offers.yaml did not parse, so lint rendered no email at all: the week template's
    # unknown variable went unreported until the YAML was fixed
    root = broken(replace("sequences/offers.yaml", "  - key: offer-a",
                          "  - key: 'offer-a"),
                  replace(WEEK, "Happy running,", "Happy running, {{ coach.nick }}"))
    found = errors_in(lint_project(root))
    where = sorted((Path(f.file).name, f.line) for f in found)
    assert ("week.md.j2", 13) in where, "\n".join(str(f) for f in found)
    assert any(f.file.endswith("offers.yaml") and "never closed" in f.message for f in found)


def test_a_broken_sequence_file_hides_no_other_file(broken: Broken) -> None:
    def second(root: Path) -> None:
        text = (root / YAML).read_text().replace("key: basic", "key: other", 1)
        (root / "sequences" / "other.yaml").write_text(text)

    root = broken(second, use(MISTAKES / "unclosed-quote.yaml"),
                  replace(WEEK, "Happy running,", "Happy running, {{ coach.nick }}"))
    found: list[Finding] = errors_in(lint_project(root))
    assert sorted((Path(f.file).name, f.line) for f in found) == [
        ("basic.yaml", 21), ("week.md.j2", 13)], "\n".join(str(f) for f in found)
