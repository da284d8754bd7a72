"""The coach's weekly digest: who is where, who is struggling, who graduated, who went quiet,
and what sold. The point is that she can reach out personally to the people who need it."""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Mapping
from collections.abc import Sequence as Seq
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from urllib.parse import quote

from drip.errors import PermanentProviderError, TransientProviderError
from drip.message import Content, Message
from drip.planner import WAITING, Sent, base_variant, not_yet_streak, progress, silent_streak
from drip.providers.base import Provider
from drip.render import Letter, Sender, write_letter
from drip.sequence import Library, Offers, Sequence
from drip.store import EnrollmentRow, PurchaseRow, Store

ACTIVE = ("active", "paused")


@dataclass(frozen=True)
class Person:
    email: str
    name: str
    note: str


@dataclass(frozen=True)
class Conversion:
    offer_key: str
    offer_name: str
    shown_to: int
    bought: int


@dataclass(frozen=True)
class SequenceDigest:
    key: str
    name: str
    by_week: list[tuple[str, int]]
    struggling: list[Person]
    graduated: list[Person]
    silent: list[Person]
    conversions: list[Conversion]
    #: Paused at a gate after its waiting emails went unanswered: the coach should reach out.
    at_gate: list[Person] = field(default_factory=list)


@dataclass(frozen=True)
class Digest:
    generated_at: datetime
    since: datetime
    sequences: list[SequenceDigest]


def build_digest(library: Library, enrollments: Mapping[str, Seq[EnrollmentRow]],
                 histories: Mapping[int, Seq[Sent]], purchases: Seq[PurchaseRow],
                 now: datetime, days: int = 7) -> Digest:
    """Pure: the digest from what the store knows, as it stood at `now`.

    What happened after `now` (a simulated run with `drip dispatch --now` ahead of the
    clock, or a digest asked for an earlier week) is left out: a graduation next month is
    not "this week".
    """
    since = now - timedelta(days=days)
    until_now = {key: [item for item in history if item.went_out_at <= now]
                 for key, history in histories.items()}
    bought = [p for p in purchases if p.purchased_at <= now]
    joined = {key: [_as_of(row, now) for row in rows if row.enrolled_at <= now]
              for key, rows in enrollments.items()}
    return Digest(now, since, [
        _sequence_digest(sequence, library.offers, joined.get(key, []), until_now,
                         bought, since)
        for key, sequence in sorted(library.sequences.items())
    ])


def _as_of(row: EnrollmentRow, now: datetime) -> EnrollmentRow:
    """An enrollment that ended after `now` was still going then."""
    if row.finished_at is not None and row.finished_at > now:
        return replace(row, state="active", finished_at=None)
    return row


def _sequence_digest(sequence: Sequence, offers: Offers, rows: Seq[EnrollmentRow],
                     histories: Mapping[int, Seq[Sent]], purchases: Seq[PurchaseRow],
                     since: datetime) -> SequenceDigest:
    weeks: Counter[str] = Counter()
    struggling, graduated, silent, at_gate = [], [], [], []
    shown: dict[str, dict[int, datetime]] = {}
    for row in rows:
        history = list(histories.get(row.enrollment_id, []))
        for item in history:
            if item.nudge:
                first_seen = shown.setdefault(item.nudge, {})
                first_seen.setdefault(row.subscriber_id, item.went_out_at)
        if any(base_variant(i.variant) == "graduated" and i.went_out_at >= since
               for i in history):
            graduated.append(Person(row.email, row.name, "graduated this week"))
        if row.state not in ACTIVE:
            continue
        steps = progress(history)
        if not steps:
            weeks["not started"] += 1
            continue
        last = steps[-1]
        step = sequence.step(last.step_key) if last.step_key in sequence.step_keys else None
        weeks[f"Week {step.week}" if step else last.step_key] += 1
        streak = not_yet_streak(history)
        if streak >= 2:
            struggling.append(Person(row.email, row.name,
                                     f"'not yet' {streak} times in a row on {last.step_key}"))
        waited = silent_streak(history, WAITING)
        if row.state == "paused" and step is not None and waited and last.answer is None:
            at_gate.append(Person(row.email, row.name, (
                f"no answer to the week {step.week} checkpoint since "
                f"{_first_unanswered(steps):%d %b}, after {waited} waiting "
                f"email{'s' if waited != 1 else ''}; paused")))
            continue
        asked = [i for i in steps if _has_checkpoint(sequence, i)]
        if len(asked) >= 2 and all(i.answer is None for i in asked[-2:]):
            silent.append(Person(row.email, row.name,
                                 f"no checkpoint answer since {asked[-2].went_out_at:%d %b}"))
    conversions = []
    for offer in offers.offers:
        viewers = shown.get(offer.key, {})
        bought = {p.subscriber_id for p in purchases if p.product == offer.key
                  and p.subscriber_id in viewers and viewers[p.subscriber_id] <= p.purchased_at}
        conversions.append(Conversion(offer.key, offer.name, len(viewers), len(bought)))
    order = {f"Week {s.week}": i for i, s in enumerate(sequence.steps)}
    by_week = sorted(weeks.items(), key=lambda kv: order.get(kv[0], -1))
    return SequenceDigest(sequence.key, sequence.name, by_week, struggling, graduated, silent,
                          conversions, at_gate)


def _first_unanswered(steps: Seq[Sent]) -> datetime:
    """When the run of unanswered emails on the current step began."""
    first = steps[-1]
    for item in reversed(steps):
        if item.step_key != first.step_key or item.answer is not None:
            break
        first = item
    return first.went_out_at


def _has_checkpoint(sequence: Sequence, item: Sent) -> bool:
    if item.step_key not in sequence.step_keys or base_variant(item.variant) == "graduated":
        return False
    return sequence.step(item.step_key).checkpoint is not None


def gather(store: Store, library: Library, now: datetime) -> Digest:
    enrollments = {key: store.enrollments_of(key) for key in library.sequences}
    ids = [row.enrollment_id for rows in enrollments.values() for row in rows]
    histories = store.histories(ids)
    purchases = store.purchases_since(datetime(1970, 1, 1, tzinfo=now.tzinfo))
    return build_digest(library, enrollments, histories, purchases, now)


def digest_text(digest: Digest) -> str:
    """The digest as plain text (`drip digest` prints it)."""
    return f"Your weekly drip digest, {digest.generated_at:%A %d %B %Y}\n\n" + _sections(digest)


def _sections(digest: Digest) -> str:
    lines = []
    for s in digest.sequences:
        lines += [s.name, "=" * len(s.name), ""]
        lines.append("Where everyone is: " + (", ".join(f"{w}: {n}" for w, n in s.by_week)
                                               or "nobody yet"))
        for title, people in _groups(s):
            lines += ["", f"{title}: {len(people)}"]
            lines += [f"  - {p.name or p.email} <{p.email}>: {p.note}" for p in people]
        lines += ["", "Offers (shown to / bought after seeing it):"]
        lines += [f"  - {c.offer_name}: {c.shown_to} / {c.bought}" for c in s.conversions]
        lines.append("")
    return "\n".join(lines)


def digest_html(digest: Digest) -> str:
    """The digest's body as HTML, for the emails' layout (`digest_letter`)."""
    e = html.escape
    parts = [f"<p>{digest.generated_at:%A %d %B %Y}: where everyone is in each program, "
             "and who has gone quiet or is struggling.</p>"]
    for s in digest.sequences:
        parts.append(f"<h2>{e(s.name)}</h2><p><strong>Where everyone is:</strong> "
                     + e(", ".join(f"{w}: {n}" for w, n in s.by_week) or "nobody yet")
                     + "</p>")
        for title, people in _groups(s):
            parts.append(f"<h3>{e(title)}: {len(people)}</h3>")
            if people:
                parts.append("<ul>" + "".join(
                    f"<li>{_who(p)}: {e(p.note)}</li>" for p in people) + "</ul>")
        parts.append("<h3>Offers</h3>")
        if s.conversions:
            parts.append("<ul>" + "".join(
                f"<li>{e(c.offer_name)}: shown to {c.shown_to}, bought by {c.bought}</li>"
                for c in s.conversions) + "</ul>")
        else:
            parts.append("<p>No offers yet.</p>")
    return "\n".join(parts)


def digest_letter(digest: Digest, sender: Sender) -> Content:
    """The digest as an email in the layout every email wears."""
    return write_letter(sender, Letter(
        key="digest", subject=f"Your weekly drip digest: {digest.generated_at:%d %B %Y}",
        preheader=_preheader(digest), kicker="Your weekly drip digest",
        heading="Who might like to hear from you",
        body_html=digest_html(digest),
        body_text=f"{digest.generated_at:%A %d %B %Y}: where everyone is in each program, "
                  f"and who has gone quiet or is struggling.\n\n{_sections(digest)}",
        reason="You are getting this because you run these programs in drip "
               "(DRIP_COACH_EMAIL)."))


def _who(person: Person) -> str:
    """Name and address, the address a link that starts an email to them: the digest is
    for reaching out."""
    link = (f'<a href="mailto:{html.escape(quote(person.email, safe="@"))}">'
            f"{html.escape(person.email)}</a>")
    return f"{html.escape(person.name)} ({link})" if person.name else link


def _groups(s: SequenceDigest) -> list[tuple[str, list[Person]]]:
    return [("Silent at a gate (paused: reach out)", s.at_gate),
            ("Struggling (reach out?)", s.struggling),
            ("Graduated", s.graduated),
            ("Gone quiet (two checkpoints unanswered)", s.silent)]


def _preheader(digest: Digest) -> str:
    reach = sum(len(s.at_gate) + len(s.struggling) for s in digest.sequences)
    graduated = sum(len(s.graduated) for s in digest.sequences)
    return (f"{reach} {'runner' if reach == 1 else 'runners'} to reach out to, "
            f"{graduated} graduated this week.")


def send_digest(store: Store, library: Library, provider: Provider, sender: Sender,
                coach_email: str, now: datetime) -> Digest:
    """Email the digest to the coach; recorded as an event, not as a delivery."""
    digest = gather(store, library, now)
    content = digest_letter(digest, sender)
    message = Message(delivery_id=0, enrollment_id=0, sequence_key="digest", step_key="digest",
                      variant="main", to_email=coach_email, to_name=sender.name,
                      from_email=sender.email, from_name=sender.name, content=content,
                      transactional=True)
    (result,) = provider.send_batch([message])
    if result.verdict != "accepted":
        reason = result.reason or "the provider did not take it"
        store.record_event("digest_failed", now, f"{result.verdict}: {reason}", email=coach_email)
        error = PermanentProviderError if result.verdict == "permanent" else TransientProviderError
        raise error(f"The weekly digest to {coach_email} was not sent ({result.verdict}): "
                    f"{reason}")
    store.record_event("digest_sent", now, f"{result.verdict}: {result.reason or ''}".strip(),
                       email=coach_email)
    return digest
