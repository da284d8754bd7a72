"""`drip simulate`: one persona's whole journey through a sequence, in simulated time.

Built on the pure planner walk (drip.journey), so no database is touched: the calendar
is what the engine would plan, each email at its due time, in the persona's local time.
Written out (--out), each email's Passed / Not yet buttons open the email that answer
brings, so the coach can click through the journey and its other branches.
"""

from __future__ import annotations

import re
from collections.abc import Sequence as Seq
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from drip.addresses import validate_timezone, zone
from drip.errors import InvalidInput
from drip.journey import Email, Persona, walk
from drip.links import Links
from drip.message import Content, Message, placeholder, to_mime
from drip.planner import NOT_YET, PASSED, REPEAT_LAST, is_checkpoint_reminder
from drip.render import Renderer, Sender
from drip.samples import sample_message
from drip.sequence import Library, Offers, Sequence

_ANSWERS = {"pass": PASSED, "passed": PASSED, "p": PASSED, "yes": PASSED,
            "notyet": NOT_YET, "not-yet": NOT_YET, "n": NOT_YET, "no": NOT_YET,
            "back": REPEAT_LAST, "repeatlast": REPEAT_LAST, "repeat-last": REPEAT_LAST,
            "-": None, "none": None, "skip": None, "": None}
_AT_WEEK = re.compile(r"^\s*([a-z0-9][a-z0-9-]*)\s*@\s*(\d+)\s*$")


@dataclass(frozen=True)
class SimulatedEmail:
    """One email of the journey: when it lands locally, what it is, and its rendered content."""

    number: int
    at: datetime  # UTC
    local: datetime
    step_key: str
    week: int
    variant: str
    nudge: str | None
    answer: str | None
    content: Content


@dataclass(frozen=True)
class Simulation:
    sequence_key: str
    timezone: str
    joined_at: datetime
    emails: list[SimulatedEmail]
    ended: str
    events: list[str]
    persona: Persona


def parse_answers(text: str) -> tuple[str | None, ...]:
    """'pass,notyet,-' -> ('passed', 'not-yet', None): one answer per weekly email, in order
    (checkpoint reminders are not counted: a silent email gets its reminder, if any, and
    its answer then counts for it). 'back' is "repeat last week instead"."""
    if not text.strip():
        return ()
    answers = []
    for token in text.split(","):
        key = token.strip().lower().replace("_", "").replace(" ", "")
        if key not in _ANSWERS:
            raise InvalidInput(f"'{token.strip()}' is not an answer; write pass, notyet, back "
                               "(repeat last week) or - (no answer) for each weekly email, "
                               "like --answers pass,notyet,pass.")
        answers.append(_ANSWERS[key])
    return tuple(answers)


def parse_buys(items: Seq[str]) -> list[tuple[str, int]]:
    """['12-week-program@3'] -> [('12-week-program', 3)]: bought during program week 3."""
    parsed = []
    for item in items:
        match = _AT_WEEK.match(item.lower())
        if not match:
            raise InvalidInput(f"'{item}' is not OFFER@WEEK; write it like "
                               "--buys 12-week-program@3.")
        parsed.append((match.group(1), int(match.group(2))))
    return parsed


def simulate(library: Library, renderer: Renderer, *, sequence_key: str, timezone: str,
             joined_at: datetime, answers: tuple[str | None, ...] = (),
             buys: Seq[tuple[str, int]] = (), pauses: Seq[int] = ()) -> Simulation:
    """Walk the persona through the sequence and render every email it would get.

    A purchase or pause "in week N" happens just after the first email of week N."""
    sequence = library.sequence(sequence_key)
    timezone = validate_timezone(timezone)
    # A purchase matters to a journey only through the offers and the goals: any other key
    # (a typo, say) would be "bought" and change nothing, while the calendar says it was.
    known = [o.key for o in library.offers.offers]
    known += [g.purchased for g in sequence.goals
              if g.purchased is not None and g.purchased not in known]
    for offer, _ in buys:
        if offer not in known:
            raise InvalidInput(f"'{offer}' is not an offer or a goal of {sequence.key}, so "
                               f"buying it would change nothing; use one of: "
                               f"{', '.join(known) or 'none'}.")
    plain = walk(sequence, library.offers, Persona(timezone, joined_at, answers))

    def after_week(week: int, what: str) -> int:
        for email in plain.emails:
            if sequence.step(email.step_key).week == week:
                return email.index
        raise InvalidInput(f"The persona never gets a week {week} email, so it cannot {what} "
                           f"then; the weeks it gets are "
                           f"{sorted({sequence.step(e.step_key).week for e in plain.emails})}.")

    bought = {after_week(week, f"buy {offer}"): offer for offer, week in buys}
    paused = {after_week(week, "pause"): 1 for week in pauses}
    journey = walk(sequence, library.offers,
                   Persona(timezone, joined_at, answers, buys=bought, pauses=paused))
    # (the persona is kept on the Simulation: written out, each button opens what it brings)
    tz = zone(timezone)
    emails = [_simulated(renderer, sequence_key, e, tz) for e in journey.emails]
    events = [f"buys {offer} after email {index + 1}" for index, offer in sorted(bought.items())]
    events += [f"pauses a week after email {index + 1}" for index in sorted(paused)]
    persona = Persona(timezone, joined_at, answers, buys=bought, pauses=paused)
    return Simulation(sequence.key, timezone, joined_at, emails, journey.ended, events, persona)


def _simulated(renderer: Renderer, sequence_key: str, email: Email,
               tz: ZoneInfo) -> SimulatedEmail:
    sequence = renderer.library.sequence(sequence_key)
    has_checkpoint = sequence.step(email.step_key).checkpoint is not None
    return SimulatedEmail(
        number=email.index + 1, at=email.at, local=email.at.astimezone(tz),
        step_key=email.step_key, week=sequence.step(email.step_key).week,
        variant=email.variant, nudge=email.nudge,
        answer=email.answer if has_checkpoint and email.variant != "graduated" else None,
        content=renderer.content(sequence_key, email.step_key, email.variant, email.nudge),
    )


#: The answers an email's buttons give, and the link each button's placeholder holds.
_BUTTONS = ((PASSED, "checkpoint_passed_url"), (NOT_YET, "checkpoint_not_yet_url"),
            (REPEAT_LAST, "checkpoint_repeat_url"))


def what_follows(sequence: Sequence, offers: Offers, persona: Persona, emails: Seq[Email],
                 position: int, answer: str) -> Email | None:
    """The email after emails[position] had the persona answered its checkpoint `answer`
    (a checkpoint reminder's buttons answer the weekly email it reminds of)."""
    weekly = sum(1 for e in emails[:position + 1] if not is_checkpoint_reminder(e.variant)) - 1
    answers: list[str | None] = [*persona.answers]
    answers += [None] * (weekly + 1 - len(answers))
    answers[weekly] = answer
    other = walk(sequence, offers, replace(persona, answers=tuple(answers))).emails
    asked = [e for e in other if not is_checkpoint_reminder(e.variant)]
    if weekly >= len(asked) or asked[weekly].index + 1 >= len(other):
        return None
    return other[asked[weekly].index + 1]


def write_emails(simulation: Simulation, library: Library, renderer: Renderer, sender: Sender,
                 links: Links, out_dir: Path) -> list[Path]:
    """Each email as an .eml file (dated at its simulated send time) and as .html to open.

    Its checkpoint buttons link to the email each answer brings: the next one written
    (for the persona's own answer) or an extra `NN-if-<answer>-...html` for the other
    answers; relative in the .html files, file:// in the .eml files."""
    sequence = library.sequence(simulation.sequence_key)
    out_dir.mkdir(parents=True, exist_ok=True)
    plain = [Email(e.number - 1, e.step_key, e.variant, e.nudge, e.at, e.answer)
             for e in simulation.emails]
    written = []
    for position, email in enumerate(simulation.emails):
        message = sample_message(email.content, sequence, sender, links,
                                 step_key=email.step_key, variant=email.variant,
                                 nudge=email.nudge, delivery_id=email.number)
        targets: dict[str, str] = {}
        for answer, field in _BUTTONS:
            if placeholder(field) not in email.content.html + email.content.text:
                continue
            follows = what_follows(sequence, library.offers, simulation.persona, plain,
                                   position, answer)
            if follows is not None:
                targets[field] = _file_for(follows, position, answer, simulation, library,
                                           renderer, sender, links, out_dir)
        stem = _stem(email.number, email.step_key, email.variant)
        eml = out_dir / f"{stem}.eml"
        as_uris = {f: (out_dir / name).resolve().as_uri() for f, name in targets.items()}
        eml.write_bytes(to_mime(_linked(message, as_uris), sent_at=email.at).as_bytes())
        (out_dir / f"{stem}.html").write_text(_linked(message, targets).html(),
                                              encoding="utf-8")
        written.append(eml)
    return written


def _stem(number: int, step_key: str, variant: str) -> str:
    return f"{number:02d}-{step_key}-{variant.replace('+', '-')}"


def _linked(message: Message, targets: dict[str, str]) -> Message:
    return replace(message, values={**message.values, **targets}) if targets else message


def _file_for(follows: Email, position: int, answer: str, simulation: Simulation,
              library: Library, renderer: Renderer, sender: Sender, links: Links,
              out_dir: Path) -> str:
    """The .html file of the email `answer` brings: the next one written when it is that
    one, else one written for this branch (its own buttons lead nowhere further)."""
    emails = simulation.emails
    after = emails[position + 1] if position + 1 < len(emails) else None
    if after is not None and (after.step_key, after.variant, after.nudge) == (
            follows.step_key, follows.variant, follows.nudge):
        return f"{_stem(after.number, after.step_key, after.variant)}.html"
    number = emails[position].number
    name = f"{number:02d}-if-{answer}-{follows.step_key}-{follows.variant.replace('+', '-')}.html"
    content = renderer.content(simulation.sequence_key, follows.step_key, follows.variant,
                               follows.nudge)
    message = sample_message(content, library.sequence(simulation.sequence_key), sender, links,
                             step_key=follows.step_key, variant=follows.variant,
                             nudge=follows.nudge, delivery_id=number)
    (out_dir / name).write_text(message.html(), encoding="utf-8")
    return name
