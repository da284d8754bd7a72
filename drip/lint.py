"""`drip lint`: every mistake in the sequence, template and offer files, before anyone is sent one.

Each finding names the file, the line, what is wrong and how to fix it. Errors stop
a release (the command exits non-zero); warnings are worth a look.
"""

from __future__ import annotations

import difflib
import html as htmllib
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Literal

import jinja2
import jinja2.meta

from drip.errors import SequenceError, TemplateError
from drip.links import Links
from drip.message import Content, fill
from drip.mistakes import template_mistake
from drip.planner import CHECKPOINT_REMINDER, NUDGEABLE, REMINDER, WAITING, branch_of
from drip.render import HTML_LAYOUT, TEXT_LAYOUT, Renderer, Sender, email_spec, every_email
from drip.samples import SAMPLE_SUBSCRIBERS, sample_values
from drip.sequence import (
    EXERCISES_FILE,
    NOT_SEQUENCES,
    Exercises,
    Library,
    Offers,
    Sequence,
    check_exercises_file,
    check_offers_file,
    check_sequence_file,
    line_of,
)
from drip.store import EnrollmentPosition

Severity = Literal["error", "warning"]
#: Longer subjects are cut off in most inboxes (and RFC 5322 recommends 78 per line).
SUBJECT_LIMIT = 78
LAYOUTS = (HTML_LAYOUT, TEXT_LAYOUT)


@dataclass(frozen=True)
class Finding:
    """One thing lint found: where, what, how to fix it, and whether it stops a release."""

    severity: Severity
    file: str
    line: int | None
    message: str
    fix: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        text = f"{where}: {self.severity}: {self.message}"
        return f"{text} Fix: {self.fix}" if self.fix else text

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def errors_in(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "error"]


def lint(sequences_dir: Path, templates_dir: Path, sender: Sender, links: Links,
         positions: Iterable[EnrollmentPosition] | None = None) -> list[Finding]:
    """Check every sequence, offer and template file; with `positions` (from the database),
    also warn about enrollments that a removed or renamed step would strand."""
    linter = _Linter(sequences_dir, templates_dir, sender, links)
    linter.run()
    if positions is not None:
        linter.stranded(positions)
    return linter.result()


def findings_behind(error: SequenceError, sequences_dir: Path, templates_dir: Path,
                    sender: Sender, links: Links) -> list[Finding]:
    """Why the files failed to load or render (for preview, simulate and the preview page):
    every error lint finds, in lint's words, or `error` itself if lint finds none."""
    found = errors_in(lint(sequences_dir, templates_dir, sender, links))
    return found or [_from(error)]


def _from(error: SequenceError, severity: Severity = "error") -> Finding:
    message = error.problem
    if error.field:
        message = f"{error.field}: {message}"
    return Finding(severity, error.file or "", error.line, message, error.fix)


class _Links(HTMLParser):
    """The links of an HTML part, and the text of its paragraphs, list items and headings.

    Text is kept in runs between links (the text part prints a link differently), so
    each run must be found in the plain-text part as it stands."""

    BLOCKS = ("p", "li", "h1", "h2", "h3")

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []
        self.images: list[str] = []
        self.items: list[str] = []
        self._open: list[list[str]] = []
        self._hidden = 0
        self._in_link = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.hrefs.append(href)
            self._in_link += 1
            if self._open:
                self._open[-1].append("\0")
        if tag == "img":
            self.images.append(dict(attrs).get("src") or "")
        if tag in self.BLOCKS:
            self._open.append([])
        if tag in ("style", "title", "head"):
            self._hidden += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._in_link = max(0, self._in_link - 1)
            if self._open:
                self._open[-1].append("\0")
        if tag in self.BLOCKS and self._open:
            runs = "".join(self._open.pop()).split("\0")
            self.items.extend(run.strip() for run in runs if run.strip())
        if tag in ("style", "title", "head"):
            self._hidden = max(0, self._hidden - 1)

    def handle_data(self, data: str) -> None:
        if not self._hidden and not self._in_link and self._open:
            self._open[-1].append(data)


#: Filters that leave a per-recipient placeholder as it is (it holds no HTML specials).
_HARMLESS_FILTERS = frozenset({"e", "escape", "safe", "string", "trim"})


def _recipient_names(node: jinja2.nodes.Node) -> list[str]:
    """The per-recipient values (subscriber.first_name, ...) an expression uses."""
    every = [node, *node.find_all(jinja2.nodes.Node)]
    found = [f"subscriber.{n.attr}" for n in every if isinstance(n, jinja2.nodes.Getattr)
             and isinstance(n.node, jinja2.nodes.Name) and n.node.name == "subscriber"]
    bare = [n for n in every if isinstance(n, jinja2.nodes.Name) and n.name == "subscriber"]
    return found or (["subscriber"] if bare else [])


def _recipient_misuse(tree: jinja2.nodes.Template) -> list[tuple[int, str, str]]:
    """(line, value, how) wherever a template branches on, compares or transforms a
    per-recipient value. Those are filled in for each person after the email is built,
    so the template only ever sees a placeholder such as %%first_name%%."""
    found: list[tuple[int, str, str]] = []
    tests = [(n.lineno, n.test) for n in tree.find_all(jinja2.nodes.If)]
    tests += [(n.lineno, n.test) for n in tree.find_all(jinja2.nodes.CondExpr)]
    for lineno, test in tests:
        for name in _recipient_names(test):
            found.append((lineno, name, "is tested with {% if %}"))
    for compare in tree.find_all(jinja2.nodes.Compare):
        for name in _recipient_names(compare):
            found.append((compare.lineno, name, "is compared"))
    for use in tree.find_all((jinja2.nodes.Filter, jinja2.nodes.Test)):
        if isinstance(use, jinja2.nodes.Filter) and use.name in _HARMLESS_FILTERS:
            continue
        how = (f"goes through the filter '| {use.name}'" if isinstance(use, jinja2.nodes.Filter)
               else f"is tested with 'is {use.name}'")
        for name in _recipient_names(use.node) if use.node is not None else []:
            found.append((use.lineno, name, how))
    targets: list[tuple[int, jinja2.nodes.Node]] = [
        (n.lineno, n.node) for n in tree.find_all(jinja2.nodes.Getitem)]
    targets += [(n.lineno, n.iter) for n in tree.find_all(jinja2.nodes.For)]
    for lineno, target in targets:
        for name in _recipient_names(target):
            found.append((lineno, name, "is cut up or looped over"))
    first: dict[tuple[int, str], str] = {}
    for line, name, how in found:  # an {% if %} on a comparison is one mistake, not two
        first.setdefault((line, name), how)
    return sorted((line, name, how) for (line, name), how in first.items())


RECIPIENT_FIX = ("print it exactly as {{ %s }}, nothing more: drip fills in each person's "
                 "value after the email is built (a missing first name already becomes "
                 "greeting_fallback)")


_VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
                   "source", "track", "wbr"})
#: Mail programs strip these, or refuse the email: never worth writing in a template.
_STRIPPED = frozenset({"script", "style", "iframe", "form", "object", "embed"})


class _RawTags(HTMLParser):
    """The raw HTML a Markdown template writes: each tag must be closed, in order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.line = 0
        self.open: list[tuple[str, int]] = []
        self.problems: list[tuple[int, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _STRIPPED:
            self.problems.append((self.line, f"<{tag}> is removed by mail programs (or gets "
                                             "the email marked as spam)"))
        if tag not in _VOID:
            self.open.append((tag, self.line))

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID:
            return
        if not any(name == tag for name, _ in self.open):
            self.problems.append((self.line, f"</{tag}> closes a tag that is not open"))
            return
        while self.open:
            name, line = self.open.pop()
            if name == tag:
                return
            self.problems.append((line, f"<{name}> is never closed (</{tag}> on line "
                                        f"{self.line} comes first)"))


def _raw_html_problems(source: str) -> list[tuple[int, str]]:
    """(line, problem) for raw HTML in a Markdown template that would break the email's
    layout: a tag left open swallows the footer, or makes the rest of the email bold."""
    from markdown_it import MarkdownIt

    tags = _RawTags()
    for token in MarkdownIt("commonmark").parse(source):
        pieces = [token] if token.type == "html_block" else [
            c for c in token.children or [] if c.type == "html_inline"]
        for piece in pieces:
            tags.line = (token.map[0] + 1) if token.map else 1
            tags.feed(piece.content)
    problems = list(tags.problems)
    problems += [(line, f"<{name}> is never closed") for name, line in tags.open]
    return sorted(set(problems))


def _line_with(path: Path, marker: str | None) -> int:
    """The line where something missing belongs: the one with `marker`, else the last."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found = next((n for n, line in enumerate(lines, 1) if marker and marker in line), None)
    return found or max(len(lines), 1)


def _recipient_message(value: str, how: str) -> str:
    result = ("every subscriber would get the same answer" if "tested" in how or
              "compared" in how else "subscribers would see a broken placeholder such as "
              "%%FIRST_NAME%% instead of their own value")
    return (f"'{value}' {how}, but it is filled in for each person only after the email "
            f"is built, so {result}.")


def _without_utm(url: str) -> str:
    """The link as the coach wrote it, without the tracking drip adds."""
    base, _, query = url.partition("?")
    kept = [p for p in query.split("&") if p and not p.startswith("utm_")]
    return f"{base}?{'&'.join(kept)}" if kept else base


def _words(text: str) -> str:
    """Letters and digits only, so typography (quotes, dashes, markup) does not count."""
    return re.sub(r"[^0-9a-z]+", "", text.lower())


class _Linter:
    def __init__(self, sequences_dir: Path, templates_dir: Path, sender: Sender,
                 links: Links) -> None:
        self.sequences_dir = sequences_dir
        self.templates_dir = templates_dir
        self.sender = sender
        self.links = links
        self.findings: list[Finding] = []
        self.sequences: dict[str, tuple[Sequence, Path]] = {}
        self.offers: Offers | None = Offers()
        self.offers_path = sequences_dir / "offers.yaml"
        self.exercises: Exercises | None = Exercises()
        self.exercises_path = sequences_dir / EXERCISES_FILE
        self.broken_templates: set[str] = set()
        #: Sequence files that did not load: what they use is unknown, so nothing is "unused".
        self.unreadable = 0
        self._env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates_dir)))

    def add(self, severity: Severity, file: Path | str, line: int | None, message: str,
            fix: str | None = None) -> None:
        finding = Finding(severity, str(file), line, message, fix)
        if finding not in self.findings:
            self.findings.append(finding)

    def result(self) -> list[Finding]:
        order = {"error": 0, "warning": 1}
        return sorted(self.findings, key=lambda f: (order[f.severity], f.file, f.line or 0))

    # --- the checks, in order ------------------------------------------------------------

    def run(self) -> None:
        if not self.sequences_dir.is_dir():
            self.add("error", self.sequences_dir, None, "The sequences folder does not exist.",
                     "create it, or point DRIP_SEQUENCES_DIR (or the PATH argument) at it")
            return
        self.load_files()
        self.check_template_syntax()
        self.check_references()
        self.check_recipient_values_in_subjects()
        self.check_plain_fields()
        self.check_unused_templates()
        self.check_unused_offers()
        self.check_gates()
        self.check_tags()
        self.check_nudge_rules()
        self.check_exercises()
        layouts_ok = all((self.templates_dir / name).exists()
                         and name not in self.broken_templates for name in LAYOUTS)
        if layouts_ok:  # with offers.yaml unreadable, every email without its offers
            self.check_rendering()

    def load_files(self) -> None:
        if self.offers_path.exists():
            self.offers, problems = check_offers_file(self.offers_path)
            self.findings.extend(_from(p) for p in problems)
        if self.exercises_path.exists():
            self.exercises, problems = check_exercises_file(self.exercises_path)
            self.findings.extend(_from(p) for p in problems)
        for path in sorted(self.sequences_dir.glob("*.y*ml")):
            if path.name in NOT_SEQUENCES:
                continue
            sequence, problems = check_sequence_file(path)
            self.findings.extend(_from(p) for p in problems)
            if sequence is None:
                self.unreadable += 1
                continue
            if sequence.key in self.sequences:
                self.add("error", path, line_of(path, ("key",)),
                         f"The sequence key '{sequence.key}' is also used by "
                         f"{self.sequences[sequence.key][1].name}.",
                         "give each sequence file its own key")
                continue
            self.sequences[sequence.key] = (sequence, path)
        self.check_catalog()

    def check_catalog(self) -> None:
        """catalog.yaml is read only when the first purchase arrives: check it now."""
        from drip.catalog import CATALOG_FILE, load_catalog

        library = Library({k: s for k, (s, _) in self.sequences.items()},
                          self.offers or Offers())
        try:
            catalog = load_catalog(self.sequences_dir, library)
        except SequenceError as exc:
            if not (self.unreadable and (exc.field or "").endswith(".sequence")):
                self.findings.append(_from(exc))  # else: it may name the unreadable file
            return
        products = {p.key for p in catalog.products}
        offers = {o.key for o in self.offers.offers} if self.offers else set()
        for sequence, path in self.sequences.values():
            for index, goal in enumerate(sequence.goals):
                if goal.purchased is not None and goal.purchased not in products | offers:
                    self.add("error", path, line_of(path, ("goals", index, "purchased")),
                             f"goals.{index}.purchased: '{goal.purchased}' is neither a product "
                             f"in {CATALOG_FILE} nor an offer, so no purchase can reach this "
                             "goal.",
                             f"use one of: {', '.join(sorted(products | offers)) or 'none'}")

    def template_files(self) -> list[str]:
        if not self.templates_dir.is_dir():
            return []
        return sorted(str(p.relative_to(self.templates_dir))
                      for p in self.templates_dir.rglob("*.j2"))

    def check_template_syntax(self) -> None:
        if not self.templates_dir.is_dir():
            self.add("error", self.templates_dir, None, "The templates folder does not exist.",
                     "create it, or point DRIP_TEMPLATES_DIR at it")
            return
        for name in self.template_files():
            path = self.templates_dir / name
            try:
                source = path.read_text(encoding="utf-8")
                tree = self._env.parse(source, name, str(path))
                if name not in LAYOUTS and not re.sub(r"{#.*?#}", "", source, flags=re.S).strip():
                    self.add("error", path, 1, "The template is empty, so its email would "
                             "carry only the layout's greeting and footer.",
                             "write the email's content in it, in Markdown")
                for line, value, how in _recipient_misuse(tree):
                    self.add("error", path, line, _recipient_message(value, how),
                             RECIPIENT_FIX % value)
                if name not in LAYOUTS:
                    for line, problem in _raw_html_problems(path.read_text(encoding="utf-8")):
                        self.add("error", path, line, f"Raw HTML: {problem}.",
                                 "write it in Markdown (## heading, **bold**, - list item, "
                                 "[words](https://...)) or close each tag you open")
            except jinja2.TemplateSyntaxError as exc:
                self.broken_templates.add(name)
                # at the line of the {% if %} left open, not where Jinja2 gave up
                mistake = template_mistake(self._env, source, exc)
                self.add("error", path, mistake.line, mistake.problem, mistake.fix)
            except UnicodeDecodeError:
                self.broken_templates.add(name)
                self.add("error", path, 1, "The template is not UTF-8 text.", "save it as UTF-8")
        for layout in LAYOUTS:
            if not (self.templates_dir / layout).exists():
                self.add("error", self.templates_dir / layout, None,
                         f"The layout {layout} is missing; every email is wrapped in it.",
                         f"copy {layout} from the sample templates folder")

    def _variants(self, sequence: Sequence) -> list[tuple[str, tuple[Any, ...], str]]:
        """(variant, YAML location of its block, template) for every variant the file defines."""
        found: list[tuple[str, tuple[Any, ...], str]] = []
        for index, step in enumerate(sequence.steps):
            found.append((f"{step.key} (main)", ("steps", index), step.template))
            if step.repeat is not None:
                found.append((f"{step.key} (repeat)", ("steps", index, "repeat"),
                              step.repeat.template))
            if step.waiting is not None:
                found.append((f"{step.key} (waiting)", ("steps", index, "waiting"),
                              step.waiting.template))
            for b_index, branch in enumerate(step.branches):
                found.append((f"{step.key} (branch {branch.when.tag})",
                              ("steps", index, "branches", b_index), branch.template))
            found += _split_test_templates(index, step)
        if sequence.checkpoint_reminder is not None:
            found.append(("checkpoint_reminder", ("checkpoint_reminder",),
                          sequence.checkpoint_reminder.template))
        if sequence.graduated is not None:
            found.append(("graduated", ("graduated",), sequence.graduated.template))
        if sequence.see_a_clinician is not None:
            found.append(("see_a_clinician", ("see_a_clinician",),
                          sequence.see_a_clinician.template))
        return found

    def check_references(self) -> None:
        known = set(self.template_files())
        offer_keys = {o.key for o in self.offers.offers} if self.offers else set()
        for sequence, path in self.sequences.values():
            for label, loc, template in self._variants(sequence):
                if template not in known:
                    close = [k for k in known if Path(k).name == Path(template).name]
                    hint = f"did you mean {close[0]}? " if close else ""
                    self.add("error", path, line_of(path, (*loc, "template")),
                             f"{label}: the template '{template}' does not exist in "
                             f"{self.templates_dir}.",
                             f"{hint}create {self.templates_dir / template} or fix the name "
                             "(it is relative to the templates folder)")
            if self.offers is None:
                continue
            references: list[tuple[str, tuple[Any, ...]]] = [
                (s.nudge, ("steps", i, "nudge")) for i, s in enumerate(sequence.steps) if s.nudge]
            if sequence.nudges.after_not_yet:
                references.append((sequence.nudges.after_not_yet, ("nudges", "after_not_yet")))
            for key, loc in references:
                if key not in offer_keys:
                    self.add("error", path, line_of(path, loc),
                             f"'{key}' is not an offer that offers.yaml defines.",
                             f"use one of: {', '.join(sorted(offer_keys)) or 'none defined'}, "
                             f"or add '{key}' to {self.offers_path}")

    def check_plain_fields(self) -> None:
        """Fields printed exactly as written: a {{ ... }} there would reach subscribers."""
        fields: list[tuple[Path, tuple[Any, ...], str]] = []
        for sequence, path in self.sequences.values():
            fields += [(path, (name,), getattr(sequence, name))
                       for name in ("name", "disclaimer", "reminder", "greeting_fallback")]
            for index, step in enumerate(sequence.steps):
                if step.checkpoint is not None:
                    fields += [(path, ("steps", index, "checkpoint", "question"),
                                step.checkpoint.question),
                               (path, ("steps", index, "checkpoint", "passing"),
                                step.checkpoint.passing)]
        for index, offer in enumerate(self.offers.offers if self.offers else []):
            fields += [(self.offers_path, ("offers", index, name), getattr(offer, name))
                       for name in ("name", "pitch")]
        for path, loc, value in fields:
            if "{{" in value or "{%" in value:
                self.add("error", path, line_of(path, loc),
                         f"{'.'.join(str(p) for p in loc)}: this text is printed exactly as "
                         "written, so subscribers would see the {{ ... }} or {% ... %} in it.",
                         "write plain text here; only subjects, preheaders and templates "
                         "fill in variables")

    def check_recipient_values_in_subjects(self) -> None:
        for sequence, path in self.sequences.values():
            blocks: list[tuple[tuple[Any, ...], Any]] = []
            for index, step in enumerate(sequence.steps):
                blocks.append((("steps", index), step))
                for name in ("repeat", "waiting"):
                    if getattr(step, name) is not None:
                        blocks.append((("steps", index, name), getattr(step, name)))
            blocks += [((name,), getattr(sequence, name)) for name in
                       ("graduated", "see_a_clinician", "checkpoint_reminder")
                       if getattr(sequence, name) is not None]
            for loc, block in blocks:
                for part in ("subject", "preheader"):
                    try:
                        tree = self._env.parse(getattr(block, part))
                    except jinja2.TemplateSyntaxError:
                        continue  # reported when it is rendered
                    for _, value, how in _recipient_misuse(tree):
                        self.add("error", path, line_of(path, (*loc, part)),
                                 f"The {part}: " + _recipient_message(value, how),
                                 RECIPIENT_FIX % value)

    def check_unused_templates(self) -> None:
        used = {t for sequence, _ in self.sequences.values()
                for _, _, t in self._variants(sequence)} | set(LAYOUTS)
        pending = list(used)
        while pending:  # what a used template includes, extends or imports is used too
            name = pending.pop()
            if name in self.broken_templates or not (self.templates_dir / name).is_file():
                continue
            source = (self.templates_dir / name).read_text(encoding="utf-8")
            for child in jinja2.meta.find_referenced_templates(self._env.parse(source)):
                if child and child not in used:
                    used.add(child)
                    pending.append(child)
        if self.unreadable:
            return
        for name in self.template_files():
            if name not in used:
                self.add("warning", self.templates_dir / name, None,
                         "No sequence uses this template.",
                         "name it in a step's 'template:' line, or delete it")

    def check_unused_offers(self) -> None:
        if not self.offers or not self.sequences or self.unreadable:
            return
        for index, offer in enumerate(self.offers.offers):
            used = any(
                offer.key in {s.nudge for s in sequence.steps}
                or offer.key == sequence.nudges.after_not_yet
                or offer.key in {g.purchased for g in sequence.goals}
                or any(s.week in offer.weeks for s in sequence.steps)
                for sequence, _ in self.sequences.values()
            )
            if not used:
                self.add("warning", self.offers_path,
                         line_of(self.offers_path, ("offers", index, "key")),
                         f"The offer '{offer.key}' is never used: no step names it and its "
                         "weeks match no step.",
                         "name it in a step's 'nudge:' line, list the weeks it suits in "
                         "'weeks:', or delete it")

    def check_gates(self) -> None:
        """A checkpoint that decides running is never passed by silence, and whatever waits
        or reminds has an email to send."""
        for sequence, path in self.sequences.values():
            for index, step in enumerate(sequence.steps):
                checkpoint = step.checkpoint
                if checkpoint is None:
                    continue
                loc = ("steps", index, "checkpoint")
                rule = sequence.no_answer_for(step)
                if checkpoint.gate and rule == "advance":
                    own = checkpoint.no_answer is not None
                    self.add("warning", path,
                             line_of(path, (*loc, "no_answer") if own else (*loc, "gate")),
                             f"{'.'.join(map(str, loc))}: this checkpoint is a gate (it "
                             "decides whether the runner moves on to something riskier), but "
                             "silence here is set to advance"
                             + ("" if own else " (the sequence's no_answer)")
                             + ". drip never moves anyone past a gate by silence, so it "
                             "waits instead; say so in the file.",
                             "add 'no_answer: hold' to this checkpoint, and a 'waiting:' "
                             "email to the step")
                waits = rule == "hold" or (checkpoint.gate and rule != "repeat")
                if waits and step.waiting is None:
                    self.add("error", path, line_of(path, ("steps", index, "key")),
                             f"steps.{index}: the {step.key} checkpoint waits for an explicit "
                             "'passed' when nobody answers, but the step has no 'waiting:' "
                             "email to send meanwhile, so a silent runner would be paused at "
                             "once.",
                             "add 'waiting: {subject: ..., preheader: ..., template: ...}' to "
                             "the step: this week's plan again, the question, and why the "
                             "program waits")
                if rule == "repeat" and step.repeat is None:
                    self.add("warning", path, line_of(path, (*loc, "no_answer")),
                             f"{'.'.join(map(str, loc))}: silence here means 'repeat', but "
                             "the step has no 'repeat:' email, so silence moves the runner "
                             "on instead.", "add a 'repeat:' email to the step")
                if checkpoint.remind_after and sequence.checkpoint_reminder is None:
                    self.add("error", path, line_of(path, (*loc, "remind_after")),
                             f"{'.'.join(map(str, loc))}.remind_after: no reminder can be "
                             "sent: the sequence has no 'checkpoint_reminder:' email.",
                             "add 'checkpoint_reminder: {subject: ..., preheader: ..., "
                             "template: ...}' at the top level of the sequence")

    def check_tags(self) -> None:
        """Every tag a goal or a branch reads can be set by something: a product in the
        catalog, a checkpoint's on_answer, or the sequence's manual_tags (set by hand)."""
        from drip.catalog import load_catalog
        from drip.tags import settable_tags, tag_uses

        library = Library({k: s for k, (s, _) in self.sequences.items()},
                          self.offers or Offers())
        try:
            catalog = load_catalog(self.sequences_dir, library)
        except SequenceError:
            return  # check_catalog reports it
        settable = settable_tags(library, (t for p in catalog.products for t in p.tags))
        for sequence, path in self.sequences.values():
            for use in tag_uses(sequence):
                if use.tag in settable:
                    continue
                where = ".".join(str(p) for p in use.loc)
                kind = "goal" if use.loc[0] == "goals" else "branch"
                self.add("error", path, line_of(path, use.loc),
                         f"{where}: nothing ever sets the tag '{use.tag}', so this {kind} "
                         "can never apply.",
                         f"set it from a product's tags in catalog.yaml or a checkpoint's "
                         f"'on_answer:', or add '{use.tag}' to 'manual_tags:' if you set it "
                         "by hand (drip tag add, an import's tags column, the API)")

    def check_nudge_rules(self) -> None:
        """What the files say about offers fits the rule: at most max_per_enrollment."""
        for sequence, path in self.sequences.values():
            cap = sequence.nudges.max_per_enrollment
            placed = [(i, s) for i, s in enumerate(sequence.steps) if s.nudge]
            if cap is not None and len(placed) > cap:
                index, step = placed[cap]
                self.add("warning", path, line_of(path, ("steps", index, "nudge")),
                         f"{len(placed)} steps name an offer, but nudges.max_per_enrollment "
                         f"is {cap}: from {step.key} on, a runner who passes every week never "
                         "sees the offer placed here.",
                         "remove the offers you care least about, or raise the cap")

    def check_exercises(self) -> None:
        """Every exercise a template names exists in exercises.yaml, at the line it is named."""
        known = {e.key for e in self.exercises.exercises} if self.exercises else set()
        used: set[str] = set()
        for name in self.template_files():
            if name in self.broken_templates:
                continue
            path = self.templates_dir / name
            try:
                tree = self._env.parse(path.read_text(encoding="utf-8"))
            except (jinja2.TemplateSyntaxError, UnicodeDecodeError):
                continue
            for call in tree.find_all(jinja2.nodes.Call):
                if not (isinstance(call.node, jinja2.nodes.Name) and call.node.name == "exercise"):
                    continue
                first = call.args[0] if call.args else None
                if not isinstance(first, jinja2.nodes.Const) or not isinstance(first.value, str):
                    self.broken_templates.add(name)
                    self.add("error", path, call.lineno,
                             "exercise(...) needs the exercise's key as its first argument, in "
                             "quotes.", 'write it like {{ exercise("hip-thrust", "3 sets of 8") }}')
                    continue
                used.add(first.value)
                if self.exercises is None:
                    self.broken_templates.add(name)  # exercises.yaml's own error says why
                elif first.value not in known:
                    self.broken_templates.add(name)  # reported here, at its line, once
                    close = difflib.get_close_matches(first.value, sorted(known), n=1)
                    self.add("error", path, call.lineno,
                             f"There is no exercise '{first.value}' in {EXERCISES_FILE}."
                             + (f" Did you mean '{close[0]}'?" if close else ""),
                             f"use a key from {self.exercises_path}, or add the exercise there")
        if self.exercises is None or self.unreadable:
            return
        for index, exercise in enumerate(self.exercises.exercises):
            if exercise.key not in used:
                self.add("warning", self.exercises_path,
                         line_of(self.exercises_path, ("exercises", index, "key")),
                         f"No template uses the exercise '{exercise.key}'.",
                         f'print it with {{{{ exercise("{exercise.key}", "...") }}}} in a '
                         "week's template, or delete it")

    # --- rendering every email -----------------------------------------------------------

    def check_rendering(self) -> None:
        library = Library({k: s for k, (s, _) in self.sequences.items()},
                          self.offers or Offers(), self.exercises or Exercises())
        renderer = Renderer(self.templates_dir, library, self.sender)
        for sequence, step_key, variant, nudge in every_email(library):
            spec = email_spec(sequence, step_key, variant)
            if (spec.template in self.broken_templates
                    or not (self.templates_dir / spec.template).is_file()):
                continue
            path = self.sequences[sequence.key][1]
            where = self._yaml_block(sequence.step_keys.index(step_key), variant)
            branch = branch_of(variant)  # a tag's version of the main email: its own block
            if branch is not None:
                where = (*where, "branches", next(
                    i for i, b in enumerate(sequence.step(step_key).branches)
                    if b.when.tag == branch))
            try:
                content = renderer.content(sequence.key, step_key, variant, nudge,
                                           footer_checked=False)  # checked below, per line
            except TemplateError as exc:
                self._render_failed(exc, path, where)
                continue
            self.check_content(content, sequence, path, where, spec.template)
        self.check_split_test_rendering(renderer)

    def check_split_test_rendering(self, renderer: Renderer) -> None:
        """Each variant of a split test renders as the step's main email would."""
        for sequence, path in self.sequences.values():
            for index, step in enumerate(sequence.steps):
                for number, variant in enumerate(step.test.variants if step.test else []):
                    if not variant.changes:
                        continue  # the step's own email, rendered above
                    template = variant.template or step.template
                    if (template in self.broken_templates
                            or not (self.templates_dir / template).is_file()):
                        continue  # reported by check_references
                    where = ("steps", index, "test", "variants", number)
                    try:
                        content = renderer.content(sequence.key, step.key, "main", step.nudge,
                                                   footer_checked=False,
                                                   test_variant=variant.key)
                    except TemplateError as exc:
                        self._render_failed(exc, path, where)
                        continue
                    self.check_content(content, sequence, path, where, template)

    @staticmethod
    def _variant_of(where: tuple[Any, ...]) -> str:
        """The variant whose YAML block `where` is (see _yaml_block)."""
        names = {"repeat": "repeat", "waiting": WAITING, "graduated": "graduated",
                 "see_a_clinician": "see-a-clinician", "checkpoint_reminder": CHECKPOINT_REMINDER}
        return names.get(str(where[-1]), "main")

    @staticmethod
    def _yaml_block(index: int, variant: str) -> tuple[Any, ...]:
        base = variant.removesuffix(REMINDER)
        if base == "repeat":
            return ("steps", index, "repeat")
        if base == WAITING:
            return ("steps", index, "waiting")
        if base == CHECKPOINT_REMINDER:
            return ("checkpoint_reminder",)
        if base == "graduated":
            return ("graduated",)
        if base == "see-a-clinician":
            return ("see_a_clinician",)
        return ("steps", index)

    def _render_failed(self, exc: TemplateError, path: Path, where: tuple[Any, ...]) -> None:
        problem = re.sub(r"\.+$", ".", exc.problem)
        fix = exc.fix or ("check the {{ }} and {% %} tags: each {{ needs a }}"
                          if "syntax error" in problem else None)
        attribute = re.match(r"'[\w ]+' has no attribute '(\w+)'", problem)
        name = re.match(r"'(\w+)' is undefined", problem)
        if attribute or name:
            unknown = attribute.group(1) if attribute else name.group(1) if name else ""
            problem = (f"Unknown variable: '{unknown}' is not one of the variables a template "
                       "can use.")
            fix = fix or ("use only the variables listed in docs/writing-sequences.md "
                          "(subscriber.first_name, sequence.name, step.week, coach.name, ...)")
        for part in ("subject", "preheader"):
            if (exc.file or "").endswith(f"({part})"):
                self.add("error", path, line_of(path, (*where, part)),
                         f"The {part} does not render: {problem}", fix)
                return
        self.add("error", exc.file or str(path), exc.line, problem, fix)

    def check_content(self, content: Content, sequence: Sequence, path: Path,
                      where: tuple[Any, ...], template: str) -> None:
        html_layout = self.templates_dir / HTML_LAYOUT
        text_layout = self.templates_dir / TEXT_LAYOUT
        html_end, text_end = _line_with(html_layout, "</body>"), _line_with(text_layout, None)
        values = sample_values(self.links, sequence, SAMPLE_SUBSCRIBERS[0])
        html, text = fill(content.html, values), fill(content.text, values)
        subject = fill(content.subject, values)
        if len(subject) > SUBJECT_LIMIT:
            self.add("warning", path, line_of(path, (*where, "subject")),
                     f"The subject is {len(subject)} characters"
                     + (" for a subscriber called Alexandra" if "%%first_name" in content.subject
                        else "")
                     + f"; inboxes cut it off after about {SUBJECT_LIMIT}: '{subject}'.",
                     f"shorten it to {SUBJECT_LIMIT} characters or fewer")
        if not fill(content.preheader, values).strip():
            self.add("error", path, line_of(path, (*where, "preheader")),
                     "The preheader is empty, so inboxes show the first words of the body "
                     "instead.", "write a one-line preheader that invites them to open it")
        parsed = _Links()
        parsed.feed(html)
        # CAN-SPAM: a working unsubscribe link and the sender's postal address, in both parts
        unsubscribe = values["unsubscribe_url"]
        if unsubscribe not in parsed.hrefs:
            self.add("error", html_layout, html_end,
                     "The HTML part has no unsubscribe link (the law requires one in every "
                     "email).", 'add <a href="{{ unsubscribe_url }}">Unsubscribe</a> to the '
                     "footer of the layout, before this line")
        if unsubscribe not in text:
            self.add("error", text_layout, text_end,
                     "The plain-text part has no unsubscribe link (the law requires one in "
                     "every email).", "add 'Unsubscribe: {{ unsubscribe_url }}' to the footer")
        address = self.sender.postal_address
        if address and address not in htmllib.unescape(html):
            self.add("error", html_layout, html_end,
                     "The HTML part does not show the postal address (the law requires it).",
                     "add {{ postal_address }} to the footer of the layout")
        if address and address not in text:
            self.add("error", text_layout, text_end,
                     "The plain-text part does not show the postal address (the law "
                     "requires it).", "add {{ postal_address }} to the footer")
        sources = [template, HTML_LAYOUT]
        variant = self._variant_of(where)
        if variant not in NUDGEABLE and self.offers is not None:
            for offer in self.offers.offers:
                pitched = [h for h in parsed.hrefs
                           if _without_utm(h).split("#")[0] == offer.url.split("#")[0]]
                if pitched:
                    file, line = self._locate(offer.url, [template])
                    self.add("error", file, line,
                             f"The {variant} email links to the offer '{offer.key}' "
                             f"({offer.url}). Offers belong only in main weekly emails, never "
                             "in a repeat, waiting, reminder, see-a-clinician or graduation "
                             "email.", "take the link out of this template")
        base = self.links.base_url
        for href in parsed.hrefs:
            if href.startswith(f"{base}/") and not base.startswith("https://"):
                self.add("error", "DRIP_BASE_URL", None,
                         f"DRIP_BASE_URL is {base}, so the unsubscribe, pause and checkpoint "
                         "links in every email are not https:// links.",
                         "set DRIP_BASE_URL to the https:// address of the web app")
                continue
            if not href.startswith(("https://", "mailto:")):
                file, line = self._locate(href, sources)
                self.add("error", file, line,
                         f"The link '{href}' is not an absolute https:// URL; it will not "
                         "work (or will warn) in an email.",
                         "write the full address, starting with https://")
        for src in parsed.images:
            if not src.startswith("https://"):
                file, line = self._locate(src, sources)
                self.add("error", file, line,
                         f"The image '{src}' is not an absolute https:// URL; mail programs "
                         "will not show it.", "write the full address, starting with https://")
        for url in re.findall(r"http://[^\s)>\]\"']+", text):
            if url in parsed.hrefs or url in parsed.images or url.startswith(f"{base}/"):
                continue  # reported above
            file, line = self._locate(url, [template, TEXT_LAYOUT])
            self.add("error", file, line,
                     f"The link '{url}' is not an https:// URL.",
                     "write the full address, starting with https://")
        # the plain-text part must carry what the HTML part says
        words = _words(text)
        for href in parsed.hrefs:
            if href not in text and href.startswith("https://"):
                file, line = self._locate(href, sources)
                self.add("error", file, line,
                         f"The plain-text part lost the link {_without_utm(href)} that the "
                         "HTML part has.",
                         f"print the URL in {TEXT_LAYOUT} too (or use a Markdown link "
                         "[text](url) in the template, which keeps it in both parts)")
        for item in parsed.items:
            if address and address in item:
                continue  # reported above, as the law's requirement
            if _words(item) and _words(item) not in words:
                file, line = self._locate(item, sources)
                if line is None:  # printed from a variable: point at where the layout uses it
                    file, line = self._locate(self._variable_for(item, sequence), sources)
                self.add("error", file, line,
                         f"The plain-text part lost '{item}', which the HTML part shows.",
                         f"write it in Markdown in the template, or add it to {TEXT_LAYOUT} "
                         "as well")

    def _variable_for(self, item: str, sequence: Sequence) -> str:
        """The layout variable whose value `item` shows (checkpoint, offer, disclaimer...)."""
        known: list[tuple[str, str]] = [(sequence.disclaimer, "disclaimer"),
                                        (sequence.reminder, "reminder"),
                                        (sequence.name, "sequence.name")]
        for step in sequence.steps:
            if step.checkpoint is not None:
                known += [(step.checkpoint.question, "checkpoint.question"),
                          (step.checkpoint.passing, "checkpoint.passing")]
        for offer in self.offers.offers if self.offers else []:
            known += [(offer.pitch, "nudge.pitch"), (offer.name, "nudge.name")]
        for value, variable in known:
            if value and _words(value) in _words(item):
                return variable
        return item

    def _locate(self, needle: str, names: list[str]) -> tuple[str, int | None]:
        """The template file and line where `needle` (or its start) is written."""
        candidates = [needle, needle.split("?", 1)[0], needle[:40]]
        if self.offers and any(needle.startswith(o.url) for o in self.offers.offers):
            candidates.append("nudge.url")
        for candidate in candidates:
            for name in names:
                path = self.templates_dir / name
                if not path.exists():
                    continue
                for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                    if candidate and candidate in line:
                        return str(path), number
        return str(self.templates_dir / names[-1]), None  # printed from a variable

    # --- versioning ----------------------------------------------------------------------

    def stranded(self, positions: Iterable[EnrollmentPosition]) -> None:
        """Warn, per sequence, how many enrollments under way sit on a step that is gone."""
        missing: dict[str, Counter[str]] = {}
        for p in positions:
            entry = self.sequences.get(p.sequence_key)
            if entry is None:
                if not (self.sequences_dir / f"{p.sequence_key}.yaml").exists():
                    missing.setdefault(p.sequence_key, Counter())["(the whole sequence)"] += 1
                continue
            keys = set(entry[0].step_keys)
            gone = [k for k in (p.next_step_key, p.last_step_key) if k and k not in keys]
            if gone:
                missing.setdefault(p.sequence_key, Counter())[gone[0]] += 1
        for sequence_key, steps in sorted(missing.items()):
            total = sum(steps.values())
            where = ", ".join(f"{k}: {n}" for k, n in sorted(steps.items()))
            path = self.sequences_dir / f"{sequence_key}.yaml"
            line = line_of(path, ("steps",)) if path.exists() else None
            self.add("warning", path, line,
                     f"{total} enrollment{'s' if total != 1 else ''} under way would be "
                     f"stranded: they are on steps that are no longer in the file ({where}). "
                     "Dispatch holds them until the step is back.",
                     "put the steps back under their old keys (never rename a step once "
                     "people are on it; add a new key instead)")


def _split_test_templates(index: int, step: Any) -> list[tuple[str, tuple[Any, ...], str]]:
    """(variant, YAML location, template) of each split-test variant with its own template."""
    if step.test is None:
        return []
    return [(f"{step.key} (test {step.test.name}, variant {variant.key})",
             ("steps", index, "test", "variants", number), variant.template)
            for number, variant in enumerate(step.test.variants) if variant.template]
