"""drip.mistakes: a parse error is reported at the line where the coach's mistake starts,
in plain words with a fix, never in PyYAML's or Jinja2's own terms."""

from __future__ import annotations

import jinja2
import pytest
import yaml

from drip.mistakes import Mistake, fields_at, template_mistake, yaml_mistake
from drip.sequence import Offers, Sequence

PARSER_WORDS = ("<block end>", "<scalar>", "expected token", "Unexpected end", "Jinja")


def of_yaml(text: str) -> Mistake:
    with pytest.raises(yaml.MarkedYAMLError) as caught:
        yaml.safe_load(text)
    return yaml_mistake(text, caught.value)


def of_template(source: str) -> Mistake:
    env = jinja2.Environment()
    with pytest.raises(jinja2.TemplateSyntaxError) as caught:
        env.parse(source)
    return template_mistake(env, source, caught.value)


@pytest.mark.parametrize(("text", "line", "words"), [
    ('a: 1\nb: "hello\nc: 2\nd: say "hi" now\ne: 3\n', 2, 'quote (") that opens the value on '
     'line 2 is never closed, so YAML reads everything from there to the next " on line 4'),
    ('a: 1\nb: "hello\nc: 2\n', 2, "to the end of the file"),
    ("a: 1\nb: 'hello\nc: 2\nd: it's\ne: 3\n", 2, "The single quote (')"),
    ("a: 1\nb: Week 1: settle\nc: 2\n", 2, "contains ': '"),
    ("a:\n  b: 1\n   c: 2\nd: 3\n", 3, "indented further than line 2"),
    ("steps:\n  - key: a\n    week: 1\n   subject: x\n", 4, "must line up exactly"),
    ("a:\n\tb: 1\n", 2, "indented with a tab"),
    ("a: [1, 2\nb: 3\nc: 4\n", 1, "The [ on line 1 is never closed with ]."),
    ("subject: {{ step.week }} go\n", 1, "starts with {{"),
    ('subject: "Week 1" settle\n', 1, "goes on after its closing \""),
    ("steps:\n  -key: a\n  - key: b\n", 2, "no space after the '-'"),
    ("a: 1\nb 2\nc: 3\n", 2, "has no ':' after the field's name"),
    ("a: 1\nsubject: % off\n", 2, "starts with '%'"),
    ("subject: *bold* text\n", 1, "starts with '*'"),
])
def test_yaml_mistakes(text: str, line: int, words: str) -> None:
    mistake = of_yaml(text)
    assert (mistake.line, words in mistake.problem) == (line, True), mistake
    assert mistake.fix and not any(w in mistake.problem + mistake.fix for w in PARSER_WORDS)


def test_the_fix_shows_the_line_with_its_value_quoted() -> None:
    assert of_yaml("a: 1\nb: Week 1: settle  # note\n").fix == (
        'put the whole value in quotes: b: "Week 1: settle"')
    assert of_yaml('a: 1\nb: Say "hi": now\n').fix == (
        "put the whole value in quotes: b: 'Say \"hi\": now'")


@pytest.mark.parametrize(("source", "line", "words"), [
    ("a\n{% if x %}\nb\n\nc\nd\n", 2, "The {% if %} on line 2 is never closed."),
    ("{% for a in b %}\n{% if x %}\nb\n", 2,
     "The {% if %} on line 2 is never closed (and the {% for %} on line 1 is not closed "
     "either)."),
    ("{% if x %}\n{% for a in b %}\nb\n{% endif %}\nc\n", 2,
     "The {% for %} on line 2 is never closed: the {% endif %} on line 4 comes first."),
    ("a\n{% endif %}\n", 2, "closes nothing: no {% if %} is open there"),
    ("a\n{% else %}\n", 2, "is outside any {% if %} block"),
    ("a\nHi {{ name\nb\nc\n", 2, "The {{ on line 2 is never closed with }}."),
    ("a\nHi {{ name }\nb\n", 2, "a single }"),
    ("a\n{% if x \nb\nc\n", 2, "The {% on line 2 is never closed with %}."),
    ("a\n{# note\nb\nc\n", 2, "never closed with #}"),
    ("{% iff x %}\n", 1, "Did you mean {% if %}?"),
    ("{% set x %}\nb\n", 1, "The {% set %} on line 1 is never closed."),
    ("{% set x = 1 %}\n{% if y %}\n", 2, "The {% if %} on line 2 is never closed."),
])
def test_template_mistakes(source: str, line: int, words: str) -> None:
    mistake = of_template(source)
    assert (mistake.line, words in mistake.problem) == (line, True), mistake
    assert mistake.fix and not any(w in mistake.problem for w in PARSER_WORDS)


def test_fields_at_follows_lists_and_optional_blocks() -> None:
    assert fields_at(Sequence, ("steps", 3, "checkpoint"))[:2] == ["question", "passing"]
    assert fields_at(Sequence, ("steps", 0, "repeat")) == ["subject", "preheader", "template"]
    assert "content_hash" not in fields_at(Sequence, ())
    assert fields_at(Offers, ("offers", 0))[:3] == ["key", "name", "url"]
    assert fields_at(Sequence, ("name",)) == []
