"""Bad sequence files and templates are refused at load, naming file, line, field and fix."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from drip.errors import SequenceError, TemplateError
from drip.render import Renderer, Sender
from drip.sequence import load_library

BASIC = Path(__file__).resolve().parents[1] / "fixtures" / "basic"
SENDER = Sender("Dayna", "coach@example.com", "1 Test Street, Springfield")


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    shutil.copytree(BASIC, tmp_path / "basic")
    return tmp_path / "basic"


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"fixture changed: {old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def load_error(workspace: Path) -> SequenceError:
    with pytest.raises(SequenceError) as info:
        library = load_library(workspace / "sequences")
        Renderer(workspace / "templates", library, SENDER).check()
    return info.value


def test_the_fixture_is_valid(workspace: Path) -> None:
    library = load_library(workspace / "sequences")
    assert Renderer(workspace / "templates", library, SENDER).check() > 0


def test_unknown_field_names_file_line_and_fix(workspace: Path) -> None:
    seq = workspace / "sequences" / "basic.yaml"
    edit(seq, "    preheader: The second week", "    preheader: The second week\n    subjet: x")
    error = load_error(workspace)
    assert error.file == str(seq)
    assert error.line == 22
    assert error.field == "steps.1.subjet"
    assert "not a known field" in str(error) and "remove it" in str(error)


def test_missing_field(workspace: Path) -> None:
    edit(workspace / "sequences" / "basic.yaml", "    subject: Week 2\n", "")
    error = load_error(workspace)
    assert error.field == "steps.1.subject"
    assert "required" in str(error) and "add 'subject:'" in str(error)


def test_bad_send_time_says_how_to_write_it(workspace: Path) -> None:
    edit(workspace / "sequences" / "basic.yaml", 'send_time: "06:30"', 'send_time: "23:30"')
    error = load_error(workspace)
    assert error.field == "schedule.send_time" and error.line == 4
    assert "between 06:00 and 20:59" in str(error)


def test_bad_wait(workspace: Path) -> None:
    edit(workspace / "sequences" / "basic.yaml", "send_after: 1 week", "send_after: soonish")
    error = load_error(workspace)
    assert error.field == "steps.1.send_after"
    assert "'1 week'" in str(error)


def test_yaml_syntax_error_has_a_line(workspace: Path) -> None:
    edit(workspace / "sequences" / "basic.yaml", "name: Basic Test Sequence",
         "name: [Basic Test Sequence")
    error = load_error(workspace)
    assert error.line == 2 and "The [ on line 2 is never closed with ]" in str(error)


def test_duplicate_step_keys(workspace: Path) -> None:
    edit(workspace / "sequences" / "basic.yaml", "key: week-3", "key: week-2")
    error = load_error(workspace)
    assert "used twice" in str(error) and error.field == "steps.2.key"


def test_unknown_offer(workspace: Path) -> None:
    edit(workspace / "sequences" / "basic.yaml", "nudge: offer-a", "nudge: offer-z")
    error = load_error(workspace)
    assert "offer-z" in str(error) and "offer-a" in str(error) and error.line == 13


def test_undefined_variable_in_a_template(workspace: Path) -> None:
    edit(workspace / "templates" / "basic" / "week.md.j2", "**5 x 30 s**",
         "**5 x {{ subscriber.favourite_colour }}**")
    error = load_error(workspace)
    assert isinstance(error, TemplateError)
    assert error.file is not None and error.file.endswith("week.md.j2")
    assert error.line == 6
    assert "favourite_colour" in str(error)


def test_missing_template(workspace: Path) -> None:
    edit(workspace / "sequences" / "basic.yaml", "template: basic/week.md.j2",
         "template: basic/nope.md.j2")
    error = load_error(workspace)
    assert isinstance(error, TemplateError) and "basic/nope.md.j2" in str(error)
    assert "does not exist" in str(error)


def test_template_syntax_error(workspace: Path) -> None:
    edit(workspace / "templates" / "basic" / "week.md.j2", "{{ coach.name }}", "{{ coach.name }")
    error = load_error(workspace)
    assert isinstance(error, TemplateError) and error.line == 14
    assert "syntax" in str(error).lower()


@pytest.mark.parametrize(("layout", "old", "named"), [
    ("layout.html.j2", '<a href="{{ unsubscribe_url }}">Unsubscribe</a>', "unsubscribe link"),
    ("layout.txt.j2", "{{ unsubscribe_url }}", "unsubscribe link"),
    ("layout.html.j2", "{{ postal_address }}", "postal address"),
    ("layout.txt.j2", "{{ postal_address }}", "postal address"),
])
def test_a_layout_without_the_unsubscribe_link_or_postal_address_is_refused(
        workspace: Path, layout: str, old: str, named: str) -> None:
    # scheduler.py runs this check before it sends anything: an email without these
    # must stop the start, as `drip lint` would, rather than go to every subscriber.
    edit(workspace / "templates" / layout, old, "")
    error = load_error(workspace)
    assert isinstance(error, TemplateError) and named in str(error)
    assert error.file is not None and error.file.endswith(layout)


def test_no_email_without_its_footer_is_rendered_for_sending(tmp_path: Path) -> None:
    """`drip dispatch` from cron runs no start-up check: rendering itself refuses a layout
    without the unsubscribe link, so such an email fails visibly instead of going out."""
    root = Path(__file__).resolve().parents[2]
    templates = tmp_path / "templates"
    shutil.copytree(root / "templates", templates)
    layout = templates / "layout.html.j2"
    layout.write_text(layout.read_text().replace('href="{{ unsubscribe_url }}"', 'href="#"'))
    library = load_library(root / "sequences")
    renderer = Renderer(templates, library, Sender("Dayna", "coach@example.com", "1 Lane"))
    with pytest.raises(TemplateError, match="no unsubscribe link"):
        renderer.content("pht-7-week", "week-1")
    # lint reads it unchecked (it reports the layout line itself); that is not cached
    assert renderer.content("pht-7-week", "week-1", footer_checked=False).html
    with pytest.raises(TemplateError, match="no unsubscribe link"):
        renderer.content("pht-7-week", "week-1")
