"""Double opt-in: ask, send a signed confirmation link, enroll only when it is confirmed.

The answer to a request is the same whether or not the address is known, so the form
cannot be used to find out who subscribes. The request (time, IP, user agent, the
version of the consent text) is kept as evidence and copied into the consent record.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime

from drip.addresses import clean_name, normalise_email, require_timezone
from drip.errors import (
    BadSignature,
    Conflict,
    InvalidFields,
    InvalidInput,
    InvalidTimezone,
    NotFound,
    ProviderError,
)
from drip.links import Links
from drip.message import Message
from drip.providers.base import Provider
from drip.render import Action, Letter, Sender, write_letter
from drip.sequence import Library
from drip.store import ConsentRecord, EnrollOutcome, OptinRequest, Store
from drip.subscriptions import enroll

SUPPRESSED = ("Earlier email to this address bounced or was reported, so we stopped sending. "
              "Reply to any earlier email if that was a mistake.")
#: How long a confirmation link works.
CONFIRM_MAX_AGE = 7 * 24 * 3600
MAX_NAME = 200


@dataclass(frozen=True)
class CheckedRequest:
    """An opt-in request whose every field drip accepts, in its stored form."""

    email: str
    name: str
    timezone: str
    sequence_key: str


def check_request(library: Library, *, email: str, name: str, timezone: str,
                  sequence_key: str) -> CheckedRequest:
    """Every field of a sign-up checked at once, or InvalidFields with one sentence per
    refused field (and a "did you mean" zone where drip can guess one).

    The timezone is required: left out, it would silently mean UTC, and a runner in Los
    Angeles would get each week at 22:30 the evening before. "UTC" itself is accepted.
    """
    problems: dict[str, str] = {}
    suggestions: dict[str, str] = {}
    address = zone_name = key = ""
    try:
        address = normalise_email(email)
    except InvalidInput as exc:
        problems["email"] = exc.message
    if len(name) > MAX_NAME:
        problems["name"] = f"The name is too long; give at most {MAX_NAME} characters."
    try:
        zone_name = require_timezone(timezone)
    except InvalidTimezone as exc:
        problems["timezone"] = exc.message
        if exc.suggestion:
            suggestions["timezone"] = exc.suggestion
    try:
        key = library.sequence(sequence_key).key
    except (InvalidInput, NotFound) as exc:
        problems["sequence"] = exc.message
    if problems:
        raise InvalidFields(problems, suggestions)
    return CheckedRequest(address, clean_name(name, MAX_NAME), zone_name, key)


@dataclass(frozen=True)
class Requester:
    """Where a request came from, recorded as consent evidence."""

    ip: str | None
    user_agent: str | None


def request_optin(store: Store, library: Library, provider: Provider, links: Links,
                  sender: Sender, *, email: str, sequence_key: str, name: str, timezone: str,
                  requester: Requester, text_version: str, now: datetime,
                  consent_text: str | None = None) -> None:
    """Record the request and email a confirmation link, unless the address is suppressed.

    `consent_text` is the wording the person was shown, kept with the request (None when
    drip did not show it, as for a JSON request from another site's form).

    Raises InvalidFields (`check_request`) for a bad address, name, timezone or sequence
    (which says nothing about who is subscribed), before anything is written. Nothing after
    that raises: if the
    provider does not take the email, it is queued (`send_unsent`), so the answer is the
    same for every address, known or not, and however the provider is doing.
    """
    checked = check_request(library, email=email, name=name, timezone=timezone,
                            sequence_key=sequence_key)
    request_id = store.record_optin_request(
        email=checked.email, sequence_key=checked.sequence_key, name=checked.name,
        timezone=checked.timezone,
        ip=(requester.ip or "")[:64] or None, user_agent=(requester.user_agent or "")[:500] or None,
        text_version=text_version, now=now, consent_text=consent_text)
    request = store.optin_request(request_id)
    if not _send_confirmation(store, library, provider, links, sender, request):
        store.confirmation_unsent(request_id, now)


def send_unsent(store: Store, library: Library, provider: Provider, links: Links,
                sender: Sender, now: datetime, limit: int = 100) -> int:
    """Try again the confirmation emails the provider did not take; how many went now.

    A request whose link would have expired is dropped: its person has to ask again.
    """
    sent = 0
    for request in store.unsent_confirmations(limit):
        if (now - request.requested_at).total_seconds() >= CONFIRM_MAX_AGE:
            store.confirmation_settled(request.id)
        elif _send_confirmation(store, library, provider, links, sender, request):
            store.confirmation_settled(request.id)
            sent += 1
    return sent


def _send_confirmation(store: Store, library: Library, provider: Provider, links: Links,
                       sender: Sender, request: OptinRequest) -> bool:
    """Email the request's confirmation link; False if the provider did not take it. A
    suppressed address is never mailed (True: there is nothing left to send)."""
    try:
        if store.subscriber_by_email(request.email).suppressed_at is not None:
            return True  # it bounced or complained before: never mail it
    except NotFound:
        pass
    sequence = library.sequences.get(request.sequence_key)
    if sequence is None:
        return True  # the program is gone: its link would only say so
    url = f"{links.base_url}/confirm/{links.signer.make('confirm', request.id)}"
    message = confirmation(sender, request.email, request.name, sequence.name, url, request.id)
    try:
        (result,) = provider.send_batch([message])
    except ProviderError:
        return False
    return result.verdict == "accepted"


def confirmation(sender: Sender, email: str, name: str, sequence_name: str, url: str,
                 request_id: int) -> Message:
    """The transactional email carrying the confirmation link, in the emails' layout."""
    greeting = f"Hi {name}," if name else "Hi,"
    label = "Yes, send it to me"
    e = html.escape
    body_html = (f"<p>{e(greeting)}</p><p>Please confirm that you want to receive "
                 f"<strong>{e(sequence_name)}</strong> from {e(sender.name)} at "
                 f"{e(email)}. Nothing is sent until you do.</p>")
    body_text = (f"{greeting}\n\nPlease confirm that you want to receive {sequence_name} "
                 f"from {sender.name} at {email}. Nothing is sent until you do.\n")
    content = write_letter(sender, Letter(
        key=f"confirm-{request_id}", subject=f"Please confirm: {sequence_name} from {sender.name}",
        preheader=f"One tap and the first email of {sequence_name} is on its way.",
        kicker=sequence_name, body_html=body_html, body_text=body_text,
        reason=(f"You are getting this because someone, probably you, asked for "
                f"{sequence_name} at this address. If it was not you, ignore this email and "
                "nothing more will be sent."),
        action=Action(label, url), heading="Please confirm your email address"))
    return Message(delivery_id=0, enrollment_id=0, sequence_key="optin",
                   step_key=f"confirm-{request_id}", variant="main", to_email=email,
                   to_name=name, from_email=sender.email, from_name=sender.name,
                   content=content, transactional=True)


def pending(store: Store, links: Links, token: str) -> OptinRequest:
    """The request a confirmation link stands for; NotFound if the link is bad or expired.

    A link carries only the request's id, so no address shows in a URL (proxy logs,
    referrers); links made before that also carry the address, which must still match.
    """
    try:
        values = links.signer.read("confirm", token, max_age=CONFIRM_MAX_AGE)
    except (BadSignature, ValueError):
        raise NotFound("That confirmation link is not valid or has expired.") from None
    if not values or len(values) > 2 or not isinstance(values[0], int):
        raise NotFound("That confirmation link is not valid.")
    request = store.optin_request(values[0])
    if len(values) == 2 and request.email != values[1]:
        raise NotFound("That confirmation link is not valid.")
    return request


def confirm_optin(store: Store, library: Library, links: Links, token: str, *,
                  requester: Requester, now: datetime) -> tuple[OptinRequest, EnrollOutcome]:
    """Enroll the person a confirmation link stands for, with their consent on record.

    Conflict (with a sentence for the person) if the address is suppressed, or if they
    unsubscribed after asking: the link outlives that, and must not undo it.
    """
    request = pending(store, links, token)
    try:
        who = store.subscriber_by_email(request.email)
    except NotFound:
        who = None
    if who is not None and who.unsubscribed_at is not None and (
            who.unsubscribed_at >= request.requested_at):
        raise Conflict("You unsubscribed after asking for this link, so it no longer signs "
                       "you up. To join again, use the sign-up form.")
    consent = ConsentRecord(
        source="optin", text_version=request.text_version, ip=request.ip,
        user_agent=request.user_agent, confirmed_at=now,
        details={"requested_at": request.requested_at.isoformat(),
                 "confirmed_ip": requester.ip, "confirmed_user_agent": requester.user_agent,
                 "consent_text": request.consent_text, "request_id": request.id},
        # the same link confirmed twice is one consent, not two
        evidence_key=f"optin-request:{request.id}",
    )
    try:
        outcome = enroll(store, library, email=request.email,
                         sequence_key=request.sequence_key, now=now, name=request.name,
                         timezone=request.timezone, source="optin", consent=consent)
    except Conflict:  # suppressed: the store's sentence is for the operator, not for them
        raise Conflict(SUPPRESSED) from None
    return request, outcome
