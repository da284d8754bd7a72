"""What a YAML or Jinja2 parse error means, in the coach's words and at the right line.

PyYAML, Jinja2 and pydantic report where they gave up, in their own terms ("expected <block end>,
but found '<scalar>'", "Unexpected end of template"). The mistake is usually earlier:
the quote that was never closed, the {% if %} that has no {% endif %}, the field name
with a typo. These functions find that line and say what to do there. Pure: they take
the file's text (or the model) and the error.
"""

from __future__ import annotations

import contextlib
import difflib
import re
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import jinja2
import yaml
from pydantic import BaseModel


@dataclass(frozen=True)
class Mistake:
    """Where a mistake starts (1-based line), what it is, and how to fix it."""

    line: int | None
    problem: str
    fix: str


# --- YAML ----------------------------------------------------------------------------------

#: A line that starts a field ("  subject: ...", "  - key: ...").
_FIELD = re.compile(r"^(\s*(?:-\s+)?)([\w-]+):(?:\s+(.*?))?\s*$")
_LOOKS_LIKE_YAML = re.compile(r"^\s*(?:-\s+)?[\w-]+:(?:\s|$)|^\s*-\s")
_QUOTE_WORD = {'"': "double", "'": "single"}
_GENERIC_YAML_FIX = ("check the indentation and quoting of this line and the lines just above "
                     "it: use spaces, line fields up under each other, and quote text that "
                     "contains ': ' or starts with {, [, *, &, %, @ or `")


def yaml_mistake(text: str, error: yaml.MarkedYAMLError) -> Mistake:
    """The mistake behind a PyYAML error in `text`, at the line where it starts."""
    lines = text.splitlines()
    problem = error.problem or ""
    context = error.context or ""
    at = error.problem_mark.line + 1 if error.problem_mark else None
    start = error.context_mark.line + 1 if error.context_mark else None
    tokens = _tokens(text, error)
    for diagnose in (_open_quote, _text_after_quote, _braces):
        found = diagnose(lines, tokens, error)
        if found is not None:
            return found
    if "'\\t'" in problem or "\t" in problem:
        return Mistake(at, f"Line {at} is indented with a tab; YAML only allows spaces.",
                       "replace the tab with spaces, lined up with the lines around it")
    special = re.search(r"found character '(.)' that cannot start any token", problem)
    if special or "alias" in context or "anchor" in context:
        char = special.group(1) if special else "*" if "alias" in context else "&"
        return Mistake(at if special else start,
                       f"The value on line {at if special else start} starts with '{char}', "
                       "which YAML reads as its own syntax, not as text.",
                       "put the whole value in quotes" + _quoted(lines, at if special else start))
    if "mapping values are not allowed" in problem and at is not None:
        written = _FIELD.match(_line(lines, at))
        if written and written.group(3) and re.search(r":(\s|$)", written.group(3)):
            return Mistake(at, f"The value on line {at} contains ': ', which YAML reads as the "
                           "start of another field.", "put the whole value in quotes"
                           + _quoted(lines, at))
        above = _previous_content(lines, at)
        return Mistake(at, f"Line {at} is indented further than line {above}, so YAML reads "
                       f"it as part of line {above}'s value.",
                       f"line it up with the field it belongs with (line {above} starts "
                       f"after {_indent(_line(lines, above))} spaces)")
    if "could not find expected ':'" in problem and start is not None:
        return Mistake(start, f"Line {start} has no ':' after the field's name.",
                       "write it as 'name: value', with a space after the colon")
    flow = re.match(r"while parsing a flow (sequence|mapping)", context)
    if flow and start is not None:
        opening, closing = ("[", "]") if flow.group(1) == "sequence" else ("{", "}")
        return Mistake(start, f"The {opening} on line {start} is never closed with {closing}.",
                       "close it on the same line, like weeks: [1, 2], or write one "
                       "'- item' per line instead")
    if problem.startswith(("expected <block end>", "did not find expected")) and at is not None:
        for number in range(start or 1, at + 1):
            if re.match(r"^\s*-[^\s-]", _line(lines, number)):
                return Mistake(number, f"Line {number} has no space after the '-' that starts "
                               "a list item.", "write '- ' (a dash, then a space)")
        above = _previous_content(lines, at)
        mine, theirs = _indent(_line(lines, at)), _indent(_line(lines, above))
        if mine != theirs:
            return Mistake(at, f"Line {at} starts after {mine} spaces, but line {above} above "
                           f"it after {theirs}: the fields of one block must line up exactly.",
                           f"indent line {at} like the field it belongs with (use spaces, "
                           "the same number as that field)")
    where = at or start
    return Mistake(where, f"YAML cannot read line {where} ({_plain(problem)}).",
                   _GENERIC_YAML_FIX)


def _tokens(text: str, error: yaml.MarkedYAMLError) -> list[yaml.Token]:
    """The tokens PyYAML read before it gave up."""
    limit = error.problem_mark.index if error.problem_mark else len(text)
    found: list[yaml.Token] = []
    try:
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            if token.start_mark.index > limit:
                break
            found.append(token)
    except yaml.YAMLError:
        pass
    return found


def _open_quote(lines: list[str], tokens: list[yaml.Token],
                error: yaml.MarkedYAMLError) -> Mistake | None:
    """A quote that is never closed on its line: YAML reads on, across the next fields,
    to the next quote of the same kind (or the end of the file)."""
    context_mark = error.context_mark
    if "while scanning a quoted scalar" in (error.context or "") and context_mark is not None:
        line = context_mark.line + 1
        quote = _line(lines, line)[context_mark.column:context_mark.column + 1] or '"'
        return _unclosed(quote, line, None, lines)
    for token in reversed(tokens):
        if not isinstance(token, yaml.ScalarToken) or token.style not in _QUOTE_WORD:
            continue
        first, last = token.start_mark.line + 1, token.end_mark.line + 1
        swallowed = [_line(lines, n) for n in range(first + 1, last + 1)]
        if first < last and any(_LOOKS_LIKE_YAML.match(s) for s in swallowed):
            return _unclosed(token.style, first, last, lines)
    return None


def _unclosed(quote: str, line: int, closed_at: int | None, lines: list[str]) -> Mistake:
    until = (f"the next {quote} on line {closed_at}" if closed_at else "the end of the file")
    inside = ("write a \" inside the text as \\\", or put the whole text in single quotes"
              if quote == '"' else "write an apostrophe inside the text as two ('')")
    return Mistake(line, f"The {_QUOTE_WORD[quote]} quote ({quote}) that opens the value on line "
                   f"{line} is never closed, so YAML reads everything from there to {until} "
                   "as one piece of text.",
                   f"end the value on line {line} with a closing {quote} ({inside})")


def _text_after_quote(lines: list[str], tokens: list[yaml.Token],
                      error: yaml.MarkedYAMLError) -> Mistake | None:
    """subject: "Week 1" settle: the value goes on after its closing quote."""
    mark = error.problem_mark
    if mark is None or "found '<scalar>'" not in (error.problem or ""):
        return None
    before = [t for t in tokens if t.end_mark.index <= mark.index]
    last = before[-1] if before else None
    if (isinstance(last, yaml.ScalarToken) and last.style in _QUOTE_WORD
            and last.end_mark.line == mark.line):
        line = mark.line + 1
        quote = last.style
        return Mistake(line, f"The value on line {line} goes on after its closing {quote}; "
                       "YAML allows nothing after a quoted value but a # comment.",
                       "put the whole value inside the quotes"
                       + (" (write a \" inside it as \\\", or use single quotes around it)"
                          if quote == '"' else " (write an apostrophe inside it as '')"))
    return None


def _braces(lines: list[str], tokens: list[yaml.Token],
            error: yaml.MarkedYAMLError) -> Mistake | None:
    """subject: {{ step.week }} ...: YAML reads the braces as its own { } syntax."""
    marks = [m for m in (error.context_mark, error.problem_mark) if m is not None]
    if not marks:
        return None
    first = min(m.line for m in marks) + 1
    last = max(m.line for m in marks) + 1
    for number in range(first, last + 1):
        written = _FIELD.match(_line(lines, number))
        if written and written.group(3) and written.group(3).startswith(("{{", "{%")):
            return Mistake(number, f"The value on line {number} starts with "
                           f"{written.group(3)[:2]}, which YAML reads as its own {{ }} syntax, "
                           "not as text.", "put the whole value in quotes"
                           + _quoted(lines, number))
    return None


def _quoted(lines: list[str], number: int | None) -> str:
    """': key: "value"': how the line reads with its value quoted."""
    written = _FIELD.match(_line(lines, number)) if number else None
    if written is None or not written.group(3):
        return ""
    value = re.sub(r"\s+#.*$", "", written.group(3))
    quote = "'" if '"' in value else '"'
    value = value.replace("'", "''") if quote == "'" else value
    return f": {written.group(2)}: {quote}{value}{quote}"


def _line(lines: list[str], number: int | None) -> str:
    return lines[number - 1] if number and 0 < number <= len(lines) else ""


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _previous_content(lines: list[str], number: int) -> int:
    """The nearest line above `number` that holds more than a comment."""
    for above in range(number - 1, 0, -1):
        stripped = _line(lines, above).strip()
        if stripped and not stripped.startswith("#"):
            return above
    return max(number - 1, 1)


def _plain(problem: str) -> str:
    """PyYAML's words, with its token names spelled out."""
    names = {"<block end>": "the end of a block", "<scalar>": "more text",
             "<block mapping start>": "a new block", "?": "a new field", "-": "a list item"}
    for token, words in names.items():
        problem = problem.replace(f"'{token}'", words).replace(token, words)
    return problem


# --- field names (pydantic) ----------------------------------------------------------------


#: Fields drip fills in itself, never written in a file.
_INTERNAL_FIELDS = frozenset({"content_hash"})


def fields_at(model: type[BaseModel], loc: Sequence[Any]) -> list[str]:
    """The fields the block at `loc` (such as ("steps", 2, "checkpoint")) can have."""
    annotation: Any = model
    for part in loc:
        annotation = _unwrap(annotation, list if isinstance(part, int) else BaseModel)
        if isinstance(part, int):
            continue
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        found = annotation.model_fields.get(str(part))
        if found is None:
            return []
        annotation = found.annotation
    annotation = _unwrap(annotation, BaseModel)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [name for name in annotation.model_fields if name not in _INTERNAL_FIELDS]
    return []


def _unwrap(annotation: Any, want: type) -> Any:
    """The model (or a list's item type) inside Optional[...], X | None, Annotated[...]."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0], want)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(annotation):
            unwrapped = _unwrap(option, want)
            if want is list and unwrapped is not option:
                return unwrapped
            if want is BaseModel and isinstance(unwrapped, type) and issubclass(unwrapped,
                                                                                BaseModel):
                return unwrapped
        return annotation
    if want is list and origin is list:
        return typing.get_args(annotation)[0]
    return annotation


def misspelt_fields(model: type[BaseModel],
                    located: Sequence[tuple[tuple[Any, ...], str, str]]) -> dict[tuple[Any, ...],
                                                                                  str]:
    """{location of an unknown field: the field it is a typo of} for pydantic's
    (loc, type, message) errors: a field that is also reported missing comes first."""
    found: dict[tuple[Any, ...], str] = {}
    for loc, kind, _ in located:
        if kind != "extra_forbidden" or not loc:
            continue
        missing = [str(other[-1]) for other, other_kind, _ in located
                   if other_kind == "missing" and other[:-1] == loc[:-1]]
        close = (difflib.get_close_matches(str(loc[-1]), missing, n=1, cutoff=0.6)
                 or difflib.get_close_matches(str(loc[-1]), fields_at(model, loc[:-1]), n=1,
                                              cutoff=0.75))
        if close:
            found[loc] = close[0]
    return found


def unknown_field(model: type[BaseModel], loc: tuple[Any, ...],
                  meant: str | None) -> tuple[str, str]:
    """(problem, fix) for a field the block does not have; `meant` is its likely spelling."""
    name = loc[-1]
    if meant is not None:
        return (f"'{name}' is not a known field. Did you mean '{meant}'?",
                f"rename it to '{meant}:' (or remove it)")
    known = fields_at(model, loc[:-1])
    return (f"'{name}' is not a known field.",
            "remove it, or check its spelling" + (f": the fields here are {', '.join(known)}"
                                                   if known else
                                                   " against docs/writing-sequences.md"))


# --- Jinja2 --------------------------------------------------------------------------------

#: The tags that open a block closed by an end tag ({% set x %} only without '=').
_BLOCK_TAGS = frozenset({"if", "for", "macro", "call", "filter", "block", "with", "autoescape",
                         "trans", "set"})
_KNOWN_TAGS = ("if", "elif", "else", "endif", "for", "endfor", "set", "endset", "include",
               "import", "from", "macro", "endmacro", "call", "endcall", "filter", "endfilter",
               "block", "endblock", "extends", "with", "endwith", "raw", "endraw")
_GENERIC_TEMPLATE_FIX = ("check the {{ }} and {% %} tags on that line: each {% if %} needs an "
                         "{% endif %}, each {{ needs a }}")


@dataclass(frozen=True)
class _Tag:
    name: str
    line: int


def template_mistake(env: jinja2.Environment, source: str,
                     error: jinja2.TemplateSyntaxError) -> Mistake:
    """The mistake behind a Jinja2 syntax error in `source`, at the line where it starts."""
    message = error.message or ""
    line = error.lineno
    unknown = re.match(r"Encountered unknown tag '(\w+)'", message)
    if unknown and not unknown.group(1).startswith(("end", "else", "elif")):
        close = difflib.get_close_matches(unknown.group(1), _KNOWN_TAGS, n=1)
        return Mistake(line, f"'{{% {unknown.group(1)} %}}' is not a tag templates can use."
                       + (f" Did you mean {{% {close[0]} %}}?" if close else ""),
                       "use {% if %}, {% for %}, {% set %} or {% include %} (see "
                       "docs/writing-sequences.md)")
    walk = _walk_tags(env, source)
    if message.startswith("Unexpected end of template") and walk.still_open:
        innermost = walk.still_open[-1]
        others = "".join(f" (and the {{% {t.name} %}} on line {t.line} is not closed either)"
                         for t in walk.still_open[:-1][-1:])
        return Mistake(innermost.line, f"The {{% {innermost.name} %}} on line {innermost.line} "
                       f"is never closed{others}.",
                       f"add {{% end{innermost.name} %}} where the words that depend on it end")
    if walk.mismatch is not None:
        opened, ending = walk.mismatch
        return Mistake(opened.line, f"The {{% {opened.name} %}} on line {opened.line} is never "
                       f"closed: the {{% {ending.name} %}} on line {ending.line} comes first.",
                       f"add {{% end{opened.name} %}} before line {ending.line}, or make the end "
                       "tag match the block it closes")
    if walk.stray is not None:
        stray = walk.stray
        belongs = "if" if stray.name in ("else", "elif", "endif") else stray.name[3:]
        what = (f"closes nothing: no {{% {belongs} %}} is open there"
                if stray.name.startswith("end") else "is outside any {% if %} block")
        return Mistake(stray.line, f"The {{% {stray.name} %}} on line {stray.line} {what}.",
                       f"delete it, or add the {{% {belongs} ... %}} it belongs to above it")
    for expected, opening, closing in (("end of print statement", "{{", "}}"),
                                       ("end of statement block", "{%", "%}")):
        if expected in message:
            start = max((n for n in walk.unclosed.get(opening, []) if n <= line), default=line)
            return Mistake(start, f"The {opening} on line {start} is never closed with "
                           f"{closing}.", f"add {closing} at the end of the tag")
    if message == "unexpected '}'":
        return Mistake(line, f"Line {line} has a single }} where }}}} should close a {{{{.",
                       "write }} to close it")
    if "end of comment" in message:
        return Mistake(line, f"The comment ({{# ...) on line {line} is never closed with #}}.",
                       "add #} where the comment ends")
    return Mistake(line, f"Template syntax error: {message.rstrip('.')}.", _GENERIC_TEMPLATE_FIX)


@dataclass
class _TagWalk:
    """What walking the tags of a template found: blocks left open, the first end tag that
    closes the wrong block, the first one that closes nothing, and the lines of {{ and {%
    left open."""

    still_open: list[_Tag] = field(default_factory=list)
    mismatch: tuple[_Tag, _Tag] | None = None
    stray: _Tag | None = None
    unclosed: dict[str, list[int]] = field(default_factory=lambda: {"{{": [], "{%": []})


def _walk_tags(env: jinja2.Environment, source: str) -> _TagWalk:
    tokens: list[tuple[int, str, str]] = []
    with contextlib.suppress(jinja2.TemplateSyntaxError):  # the tokens before it are enough
        for token in env.lex(source):
            tokens.append(token)
    walk = _TagWalk()
    stack = walk.still_open
    index = 0
    while index < len(tokens):
        line, kind, _ = tokens[index]
        if kind == "variable_begin":
            end = _find(tokens, index, "variable_end")
            if end is None:
                walk.unclosed["{{"].append(line)
            index = end if end is not None else index + 1
            continue
        if kind != "block_begin":
            index += 1
            continue
        end = _find(tokens, index, "block_end")
        if end is None:
            walk.unclosed["{%"].append(line)
            break
        inside = [(value, token_kind) for _, token_kind, value in tokens[index + 1:end]
                  if token_kind != "whitespace"]
        index = end + 1
        if not inside or inside[0][1] != "name":
            continue
        tag = _Tag(inside[0][0], line)
        if tag.name in _BLOCK_TAGS and not (tag.name == "set"
                                            and ("=", "operator") in inside):
            stack.append(tag)
        elif tag.name.startswith("end"):
            if stack and stack[-1].name == tag.name[3:]:
                stack.pop()
            elif stack and walk.mismatch is None:
                walk.mismatch = (stack[-1], tag)
            elif not stack and walk.stray is None:
                walk.stray = tag
        elif tag.name in ("else", "elif") and not any(t.name in ("if", "for") for t in stack):
            walk.stray = walk.stray or tag
    return walk


def _find(tokens: list[tuple[int, str, str]], start: int, kind: str) -> int | None:
    """The index of the first `kind` token after `start`, before the next tag opens."""
    for index in range(start + 1, len(tokens)):
        if tokens[index][1] == kind:
            return index
        if tokens[index][1] in ("variable_begin", "block_begin"):
            return None
    return None
