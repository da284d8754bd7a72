"""Turn a step of a sequence into email content: Jinja2 + Markdown, a shared layout, CSS inlined.

Pure apart from reading templates: the same inputs give the same Content, and
each group's Content is rendered once per process and cached.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import html as htmllib
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import css_inline
import jinja2
import jinja2.meta
from markupsafe import Markup

from drip.errors import TemplateError
from drip.message import Content, html_placeholders, placeholder
from drip.plaintext import markdown_parser, markdown_to_text
from drip.planner import (
    BRANCH,
    CHECKPOINT_REMINDER,
    REMINDER,
    WAITING,
    base_variant,
    branch_of,
    has_reminder,
    late_repeat_step,
    silence_moves_on,
)
from drip.sequence import Exercise, Library, Offer, Offers, Sequence

log = logging.getLogger(__name__)

HTML_LAYOUT = "layout.html.j2"
TEXT_LAYOUT = "layout.txt.j2"
VARIANTS = ("main", "repeat", WAITING, CHECKPOINT_REMINDER, "graduated", "see-a-clinician")
#: The variants silence can move a subscriber on to, so the no-answer note can top them.
NOTED_VARIANTS = ("main",)
DEFAULT_REMINDER = (
    "You didn't tell me how last week's checkpoint went, so we're moving on as planned. "
    "If last week still felt like too much, that's fine: answer \"not yet\" on this week's "
    "checkpoint and I'll send you the repeat version instead."
)


@dataclass(frozen=True)
class Sender:
    """Who the email is from, the address the law asks us to print, and the letterhead."""

    name: str
    email: str
    postal_address: str
    #: The name and logo at the top of every email (DRIP_BRAND_NAME, DRIP_BRAND_LOGO_URL).
    brand_name: str = ""
    logo_url: str = ""
    #: Where the layout is, so the letters drip writes itself wear it too (`letter`).
    templates_dir: Path = Path("templates")

    @property
    def brand(self) -> dict[str, str]:
        return {"name": self.brand_name or self.name, "logo_url": self.logo_url}


@dataclass(frozen=True)
class Action:
    """The one button a letter asks the reader to press."""

    label: str
    url: str


@dataclass(frozen=True)
class Letter:
    """An email that is not a step of a sequence (the opt-in confirmation, the coach's
    digest), written in the same layout: `body_html` is HTML, `body_text` plain text;
    `kicker` is the small line above the heading (the subject, unless `heading` is
    given), `reason` the footer's "why you got this"."""

    key: str
    subject: str
    preheader: str
    kicker: str
    body_html: str
    body_text: str
    reason: str
    action: Action | None = None
    heading: str = ""


@dataclass(frozen=True)
class EmailSpec:
    """Which subject, preheader and template one variant of a step uses."""

    subject: str
    preheader: str
    template: str
    has_checkpoint: bool


def email_spec(sequence: Sequence, step_key: str, variant: str) -> EmailSpec:
    step = sequence.step(step_key)
    branch = branch_of(variant)
    variant = base_variant(variant)
    if variant == "main" and branch is not None:  # a tag's version of the main email
        chosen = next((b for b in step.branches if b.when.tag == branch), None)
        if chosen is not None:
            return EmailSpec(chosen.subject, chosen.preheader, chosen.template,
                             step.checkpoint is not None)
    elif variant == "main":
        return EmailSpec(step.subject, step.preheader, step.template, step.checkpoint is not None)
    if variant == "repeat" and step.repeat is not None:
        r = step.repeat
        return EmailSpec(r.subject, r.preheader, r.template, step.checkpoint is not None)
    if variant == "graduated" and sequence.graduated is not None:
        g = sequence.graduated
        return EmailSpec(g.subject, g.preheader, g.template, False)
    if variant == "see-a-clinician" and sequence.see_a_clinician is not None:
        c = sequence.see_a_clinician
        return EmailSpec(c.subject, c.preheader, c.template, step.checkpoint is not None)
    if variant == WAITING and step.waiting is not None and step.checkpoint is not None:
        w = step.waiting
        return EmailSpec(w.subject, w.preheader, w.template, True)
    if (variant == CHECKPOINT_REMINDER and sequence.checkpoint_reminder is not None
            and step.checkpoint is not None and step.checkpoint.remind_days is not None):
        r = sequence.checkpoint_reminder
        return EmailSpec(r.subject, r.preheader, r.template, True)
    raise TemplateError(
        f"Step '{step_key}' has no '{variant}' variant.",
        file=f"sequences/{sequence.key}.yaml",
        field=f"steps.{step_key}.{variant}",
        fix=f"add a '{variant}' block to the sequence, or do not plan that variant",
    )


def tested_spec(spec: EmailSpec, sequence: Sequence, step_key: str, variant: str,
                test_variant: str | None) -> EmailSpec:
    """`spec` with a split-test variant's own subject, preheader or template (main emails
    only; drip.experiments.assignment decides who gets which)."""
    if test_variant is None or base_variant(variant) != "main" or branch_of(variant):
        return spec
    test = sequence.step(step_key).test
    chosen = test.variant(test_variant) if test is not None else None
    if chosen is None:
        raise TemplateError(
            f"Step '{step_key}' has no test variant '{test_variant}'.",
            file=f"sequences/{sequence.key}.yaml", field=f"steps.{step_key}.test.variants",
            fix="put the variant back under its old key while emails carrying it are out")
    return dataclasses.replace(spec, subject=chosen.subject or spec.subject,
                               preheader=chosen.preheader or spec.preheader,
                               template=chosen.template or spec.template)


def every_email(library: Library) -> Iterator[tuple[Sequence, str, str, str | None]]:
    """Every (sequence, step, variant, nudge) drip could send: each step in each variant
    the sequence defines, its main email also with the no-answer note (where silence on the
    step before moves the subscriber on), and main emails with each offer or none (no other
    email carries one)."""
    offers: list[str | None] = [None, *(o.key for o in library.offers.offers)]
    for sequence in library.sequences.values():
        for index, step in enumerate(sequence.steps):
            # the no-answer note follows silence on the step before, where silence moves on
            previous = sequence.steps[index - 1] if index else None
            noted = (tuple(v + REMINDER for v in NOTED_VARIANTS)
                     if previous is not None and silence_moves_on(sequence, previous) else ())
            branches = tuple(f"main{BRANCH}{b.when.tag}" for b in step.branches)
            for variant in (*VARIANTS, *noted, *branches, *(b + n.removeprefix("main")
                                                           for b in branches for n in noted)):
                if variant == "graduated" and index != len(sequence.steps) - 1:
                    continue  # graduation follows the last step only
                try:
                    email_spec(sequence, step.key, variant)
                except TemplateError:
                    continue
                for nudge in offers if base_variant(variant) == "main" else [None]:
                    yield sequence, step.key, variant, nudge


def with_utm(url: str, sequence_key: str, step_key: str) -> str:
    parts = urlsplit(url)
    extra = urlencode(
        {"utm_source": "drip", "utm_medium": "email", "utm_campaign": sequence_key,
         "utm_content": step_key}
    )
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit(parts._replace(query=query))


class Renderer:
    """Renders and caches the Content of each (sequence, step, variant, nudge) group."""

    def __init__(self, templates_dir: Path, library: Library, sender: Sender) -> None:
        self.templates_dir = templates_dir
        self.library = library
        self.sender = sender
        loader = jinja2.FileSystemLoader(str(templates_dir))
        common: dict[str, Any] = {
            "loader": loader,
            "undefined": jinja2.StrictUndefined,
            "keep_trailing_newline": True,
            "trim_blocks": True,
            "lstrip_blocks": True,
        }
        self._html_env = jinja2.Environment(autoescape=True, **common)
        self._text_env = jinja2.Environment(autoescape=False, **common)
        for env in (self._html_env, self._text_env):
            env.globals["exercise"] = self._exercise
        # The text part's parser: a placeholder in a link target stays whole in the HTML
        # part too (it was percent-encoded: mailto:%25%25email%25%25).
        self._markdown = markdown_parser()
        self._inliner = css_inline.CSSInliner(keep_at_rules=True)
        self._cache: dict[tuple[str, str, str, str | None, str | None], Content] = {}

    def content(self, sequence_key: str, step_key: str, variant: str = "main",
                nudge: str | None = None, *, footer_checked: bool = True,
                test_variant: str | None = None) -> Content:
        """One group's content. Its footer is checked when it is first rendered, so no path
        (dispatch from cron, a test send, a preview) can produce an email without the
        unsubscribe link or the postal address, whether or not anyone ran `drip lint`.
        `drip lint`, which reports a missing footer once at its layout line, passes
        footer_checked=False. `test_variant` names the split-test variant of the step's
        main email (drip.experiments): its subject, preheader or template replace the step's."""
        key = (sequence_key, step_key, variant, nudge, test_variant)
        cached = self._cache.get(key)
        if cached is None:
            cached = self._render(*key)
            if not footer_checked:
                return cached  # not cached: the cache holds checked content only
            self._require_footer(cached)
            self._cache[key] = cached
        return cached

    def check(self) -> int:
        """Render every step, variant and nudge once; raise the first TemplateError, or one
        for an email without the unsubscribe link or the postal address the law asks for.

        Returns how many emails were rendered."""
        count = 0
        for sequence, step_key, variant, nudge in every_email(self.library):
            self.content(sequence.key, step_key, variant, nudge)
            count += 1
        return count

    def _require_footer(self, content: Content) -> None:
        link, address = placeholder("unsubscribe_url"), self.sender.postal_address
        checks = (
            (HTML_LAYOUT, "HTML", "unsubscribe link", f'href="{link}"' in content.html,
             '<a href="{{ unsubscribe_url }}">Unsubscribe</a>'),
            (TEXT_LAYOUT, "plain-text", "unsubscribe link", link in content.text,
             "Unsubscribe: {{ unsubscribe_url }}"),
            (HTML_LAYOUT, "HTML", "postal address", address in htmllib.unescape(content.html),
             "{{ postal_address }}"),
            (TEXT_LAYOUT, "plain-text", "postal address", address in content.text,
             "{{ postal_address }}"),
        )
        for layout, part, what, present, snippet in checks:
            if not present:
                raise TemplateError(
                    f"The {part} part of {content.key} has no {what}; the law requires one "
                    "in every email.", file=str(self.templates_dir / layout),
                    fix=f"add {snippet} to the footer of the layout")

    # --- rendering ----------------------------------------------------------------------

    def _render(self, sequence_key: str, step_key: str, variant: str,
                nudge: str | None, test_variant: str | None = None) -> Content:
        sequence = self.library.sequence(sequence_key)
        step = sequence.step(step_key)
        spec = tested_spec(email_spec(sequence, step_key, variant), sequence, step_key,
                           variant, test_variant)
        offer = self.library.offers.get(nudge) if nudge else None
        context = self._context(sequence, step_key, variant)
        subject = self._string(spec.subject, context, f"sequences/{sequence.key}.yaml (subject)")
        preheader = self._string(
            spec.preheader, context, f"sequences/{sequence.key}.yaml (preheader)"
        )
        body_md = self._template(self._html_env, spec.template, context)
        body_text_md = self._template(self._text_env, spec.template, context)
        layout = {
            **context,
            "subject": subject,
            "preheader": preheader,
            "disclaimer": sequence.disclaimer,
            "reminder": (sequence.reminder or DEFAULT_REMINDER) if has_reminder(variant) else "",
            **self._late_repeat(sequence, step_key, variant),
            "postal_address": self.sender.postal_address,
            "checkpoint": self._checkpoint(step.checkpoint, spec.has_checkpoint),
            "nudge": self._nudge(offer, sequence.key, step_key),
            "unsubscribe_url": placeholder("unsubscribe_url"),
            "pause_url": placeholder("pause_url"),
            "preferences_url": placeholder("preferences_url"),
            "letter": None,
        }
        html, text = self._wrap(layout, Markup(self._markdown.render(body_md)),
                                markdown_to_text(body_text_md))
        digest = hashlib.sha256(
            "\0".join([sequence.content_hash, subject, html, text]).encode()
        ).hexdigest()[:16]
        return Content(
            key=f"{sequence_key}/{step_key}/{variant}/{nudge or '-'}"
                + (f"/{test_variant}" if test_variant else ""),
            subject=subject,
            preheader=preheader,
            html=html,
            text=squeeze_blank_lines(text),
            content_hash=digest,
        )

    def letter(self, letter: Letter) -> Content:
        """A letter in the layout: no checkpoint, nudge or unsubscribe link (nobody is on a
        list: it is a confirmation request, or the coach's own digest).

        TemplateError if a layout does not know `letter` (one written before letters), as
        it would print a weekly footer with empty unsubscribe and pause links."""
        for name in (HTML_LAYOUT, TEXT_LAYOUT):
            if "letter" not in self._variables(name):
                raise TemplateError(
                    f"The layout {name} does not print letters (the opt-in confirmation, "
                    "the digest).", file=str(self.templates_dir / name),
                    fix="copy the {% if letter %} blocks from the sample layout")
        layout: dict[str, Any] = {
            "subscriber": {"first_name": "", "email": ""},
            "sequence": {"key": "", "name": letter.kicker},
            "step": {"key": "", "week": 0, "subject": letter.subject},
            "variant": "main",
            "coach": {"name": self.sender.name, "email": self.sender.email},
            "brand": self.sender.brand,
            "subject": letter.subject,
            "preheader": letter.preheader,
            "disclaimer": "",
            "reminder": "",
            "reminder_repeat_url": None,
            "reminder_repeat_label": None,
            "postal_address": self.sender.postal_address,
            "checkpoint": None,
            "nudge": None,
            "unsubscribe_url": "",
            "pause_url": "",
            "letter": {"reason": letter.reason, "action": letter.action,
                       "heading": letter.heading or letter.subject},
        }
        html, text = self._wrap(layout, Markup(letter.body_html), letter.body_text)
        return Content(key=letter.key, subject=letter.subject, preheader=letter.preheader,
                       html=html, text=squeeze_blank_lines(text),
                       content_hash=hashlib.sha256(f"{html}\0{text}".encode()).hexdigest()[:16])

    def _variables(self, name: str) -> set[str]:
        """The variables a layout uses (TemplateError if it is missing or does not parse)."""
        try:
            source, _, _ = self._html_env.loader.get_source(  # type: ignore[union-attr]
                self._html_env, name)
            return jinja2.meta.find_undeclared_variables(self._html_env.parse(source))
        except jinja2.TemplateNotFound:
            raise TemplateError(f"The layout {name} does not exist.",
                                file=str(self.templates_dir / name)) from None
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(f"Template syntax error: {exc.message}.",
                                file=str(self.templates_dir / name), line=exc.lineno) from None

    def _wrap(self, layout: Mapping[str, Any], body_html: Markup,
              body_text: str) -> tuple[str, str]:
        """The body in the HTML and text layouts; the HTML's CSS inlined (the @media rules
        stay in a <style> block, where only their !important beats the inlined styles)."""
        html = self._template(self._html_env, HTML_LAYOUT, {**layout, "body": body_html})
        html = html_placeholders(self._inliner.inline(html))
        text = self._template(self._text_env, TEXT_LAYOUT, {**layout, "body": body_text})
        return html, text

    def _context(self, sequence: Sequence, step_key: str, variant: str) -> dict[str, Any]:
        step = sequence.step(step_key)
        return {
            "subscriber": {"first_name": placeholder("first_name"),
                           "email": placeholder("email")},
            "sequence": {"key": sequence.key, "name": sequence.name},
            "step": {"key": step.key, "week": step.week, "subject": step.subject},
            "variant": variant,
            "coach": {"name": self.sender.name, "email": self.sender.email},
            "brand": self.sender.brand,
        }

    def _exercise(self, key: str, dose: str = "", rest: str = "", number: int | None = None,
                  note: str = "") -> Markup:
        """An exercise from exercises.yaml as Markdown: its name as a heading, this week's
        dose and rest, how to do it, its cues, what holds for every dose and its demo link.
        Templates call it as {{ exercise("hip-thrust", "3 sets of 8", rest="2 minutes") }}."""
        found = self.library.exercises.get(key) if isinstance(key, str) else None
        if found is None:
            raise UnknownExercise(unknown_exercise_message(key, self.library))
        return Markup(exercise_markdown(found, dose=dose, rest=rest, number=number, note=note))

    @staticmethod
    def _late_repeat(sequence: Sequence, step_key: str, variant: str) -> dict[str, str | None]:
        """The no-answer note's "repeat last week instead" button, when that week has a repeat."""
        previous = late_repeat_step(sequence, step_key, variant)
        if previous is None:
            return {"reminder_repeat_url": None, "reminder_repeat_label": None}
        return {"reminder_repeat_url": placeholder("checkpoint_repeat_url"),
                "reminder_repeat_label": f"Repeat Week {previous.week} instead"}

    @staticmethod
    def _checkpoint(checkpoint: Any, shown: bool) -> dict[str, str] | None:
        if checkpoint is None or not shown:
            return None
        return {
            "question": checkpoint.question,
            "passing": checkpoint.passing,
            "passed_url": placeholder("checkpoint_passed_url"),
            "not_yet_url": placeholder("checkpoint_not_yet_url"),
        }

    @staticmethod
    def _nudge(offer: Offer | None, sequence_key: str, step_key: str) -> dict[str, str] | None:
        if offer is None:
            return None
        return {"key": offer.key, "name": offer.name, "pitch": offer.pitch,
                "url": with_utm(offer.url, sequence_key, step_key)}

    def _template(self, env: jinja2.Environment, name: str, context: Mapping[str, Any]) -> str:
        try:
            return env.get_template(name).render(context)
        except jinja2.TemplateNotFound as exc:
            raise TemplateError(
                f"The template '{exc.name}' does not exist.",
                file=str(self.templates_dir / str(exc.name)),
                fix=f"create it under {self.templates_dir}/ or fix the template name",
            ) from None
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(
                f"Template syntax error: {exc.message}.",
                file=exc.filename or str(self.templates_dir / name),
                line=exc.lineno,
                fix="check the {{ }} and {% %} tags on that line",
            ) from None
        except jinja2.UndefinedError as exc:
            file, line = _template_position(exc.__traceback__, self.templates_dir / name)
            raise TemplateError(
                f"{exc.message}.",
                file=file,
                line=line,
                fix="use only the variables listed in docs/writing-sequences.md "
                "(subscriber.first_name, sequence.name, step.week, coach.name, ...)",
            ) from None
        except UnknownExercise as exc:
            file, line = _template_position(exc.__traceback__, self.templates_dir / name)
            raise TemplateError(
                f"{exc}.", file=file, line=line,
                fix="use one of the exercise keys above, or add the exercise to "
                "sequences/exercises.yaml",
            ) from None
        except Exception as exc:  # the coach's template failed while it ran
            # An unknown filter or test inside {% if %} is only found when it runs (Jinja2 3),
            # like 1/0 or "a" + 1: each is a mistake in the template, not in drip.
            file, line = _template_position(exc.__traceback__, self.templates_dir / name)
            raise TemplateError(
                f"The template fails when it runs: {_runtime_message(exc)}.",
                file=file,
                line=line,
                fix="check the filters (| ...), tests (is ...) and sums on that line against "
                "docs/writing-sequences.md",
            ) from None

    def _string(self, source: str, context: Mapping[str, Any], where: str) -> str:
        try:
            # a subject or preheader is one header line: a YAML '|' block or a {% if %} may
            # leave line breaks, which no email header can carry
            return _LINE_BREAKS.sub(" ", self._text_env.from_string(source).render(context)
                                    .strip())
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(f"Template syntax error: {exc.message}.", file=where) from None
        except jinja2.UndefinedError as exc:
            raise TemplateError(f"{exc.message}.", file=where) from None
        except Exception as exc:  # as in _template
            raise TemplateError(f"It fails when it runs: {_runtime_message(exc)}.",
                                file=where) from None


@functools.lru_cache(maxsize=8)
def _letter_renderer(sender: Sender) -> Renderer:
    return Renderer(sender.templates_dir, Library({}, Offers()), sender)


def write_letter(sender: Sender, letter: Letter) -> Content:
    """A letter in the sender's layout (its templates folder), for the code that sends one
    and holds no Renderer: the opt-in confirmation and the digest.

    A layout that cannot print it (missing, or broken mid-edit: `drip lint` says where)
    must not stop a confirmation going out, so the letter then goes out plain."""
    try:
        return _letter_renderer(sender).letter(letter)
    except TemplateError as exc:
        log.error("The layout cannot print the %s email, so it goes out plain: %s",
                  letter.key, exc)
        return _plain_letter(sender, letter)


def _plain_letter(sender: Sender, letter: Letter) -> Content:
    e = htmllib.escape
    action = letter.action
    html = (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>"
            f"{e(letter.subject)}</title></head><body><h1>{e(letter.heading or letter.subject)}"
            f"</h1>{letter.body_html}"
            + (f'<p><a href="{e(action.url)}">{e(action.label)}</a></p>' if action else "")
            + f"<p>{e(letter.reason)}</p><p>{e(sender.postal_address)}</p></body></html>")
    text = (f"{letter.heading or letter.subject}\n\n{letter.body_text}\n"
            + (f"{action.label}: {action.url}\n\n" if action else "")
            + f"{letter.reason}\n{sender.postal_address}\n")
    return Content(key=letter.key, subject=letter.subject, preheader=letter.preheader,
                   html=html, text=squeeze_blank_lines(text), content_hash="")


class UnknownExercise(Exception):
    """A template names an exercise that exercises.yaml does not define."""


def unknown_exercise_message(key: object, library: Library) -> str:
    import difflib

    known = [e.key for e in library.exercises.exercises]
    close = difflib.get_close_matches(str(key), known, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return (f"There is no exercise '{key}' in sequences/exercises.yaml.{hint} The exercises "
            f"are: {', '.join(known) or 'none defined'}")


def exercise_markdown(exercise: Exercise, *, dose: str = "", rest: str = "",
                      number: int | None = None, note: str = "") -> str:
    """One exercise written out in Markdown, the same way in every email that uses it."""
    title = f"{number}. {exercise.name}" if number is not None else exercise.name
    lines = [f"### {title}"]
    if dose:
        lines.append(f"**{dose}**" + ("  " if rest else ""))  # a Markdown line break
    if rest:
        lines.append(f"Rest {rest}.")
    if exercise.how:
        lines += ["", exercise.how]
    if note:
        lines += ["", note]
    if exercise.cues:
        lines.append("")
        lines += [f"- {cue}" for cue in exercise.cues]
    if exercise.dose_notes:
        lines += ["", exercise.dose_notes]
    if exercise.demo:
        lines += ["", f"[Watch how it is done]({exercise.demo})"]
    return "\n".join(lines) + "\n"


def _runtime_message(exc: Exception) -> str:
    message = str(exc).rstrip(".")
    return message if isinstance(exc, jinja2.TemplateError) else f"{type(exc).__name__}: {message}"


def _template_position(tb: TracebackType | None, fallback: Path) -> tuple[str, int | None]:
    found: tuple[str, int | None] = (str(fallback), None)
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith(".j2"):
            found = (filename, tb.tb_lineno)
        tb = tb.tb_next
    return found


_LINE_BREAKS = re.compile(r"[ \t]*[\r\n]+[ \t]*")


def squeeze_blank_lines(text: str) -> str:
    """At most one blank line in a row, and no trailing spaces (Markdown's line breaks)."""
    text = re.sub(r"[ \t]+\n", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
