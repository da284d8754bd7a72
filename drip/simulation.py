"""`drip simulate`: one persona's whole journey through a sequence, in simulated time.

Built on the pure planner walk (drip.journey), so no database is touched: the calendar
is what the engine would plan, each email at its due time, in the persona's local time.
"""

from __future__ import annotations

import re
from collections.abc import Sequence as Seq
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from drip.addresses import validate_timezone, zone
from drip.errors import InvalidInput
from drip.journey import Email, Persona, walk
from drip.links import Links
from drip.message import Content, to_mime
from drip.planner import NOT_YET, PASSED, REPEAT_LAST
from drip.render import Renderer, Sender
from drip.samples import sample_message
from drip.sequence import Library

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
    tz = zone(timezone)
    emails = [_simulated(renderer, sequence_key, e, tz) for e in journey.emails]
    events = [f"buys {offer} after email {index + 1}" for index, offer in sorted(bought.items())]
    events += [f"pauses a week after email {index + 1}" for index in sorted(paused)]
    return Simulation(sequence.key, timezone, joined_at, emails, journey.ended, events)


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


def write_emails(simulation: Simulation, library: Library, sender: Sender, links: Links,
                 out_dir: Path) -> list[Path]:
    """Each email as an .eml file (dated at its simulated send time) and as .html to open."""
    sequence = library.sequence(simulation.sequence_key)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for email in simulation.emails:
        message = sample_message(email.content, sequence, sender, links,
                                 step_key=email.step_key, variant=email.variant,
                                 nudge=email.nudge, delivery_id=email.number)
        stem = f"{email.number:02d}-{email.step_key}-{email.variant.replace('+', '-')}"
        eml = out_dir / f"{stem}.eml"
        eml.write_bytes(to_mime(message, sent_at=email.at).as_bytes())
        (out_dir / f"{stem}.html").write_text(message.html(), encoding="utf-8")
        written.append(eml)
    return written
