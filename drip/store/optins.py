"""Queries for double opt-in: a request is kept as an event until its link is confirmed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select

from drip.clock import as_utc
from drip.errors import NotFound
from drip.models import Event
from drip.store._base import StoreBase

OPTIN_REQUESTED = "optin_requested"
#: A request whose confirmation email the provider did not take: the queue of retries.
OPTIN_UNSENT = "optin_unsent"


@dataclass(frozen=True)
class OptinRequest:
    """Someone asked to join: what they gave and where from, as consent evidence."""

    id: int
    email: str
    sequence_key: str
    name: str
    timezone: str
    requested_at: datetime
    ip: str | None
    user_agent: str | None
    text_version: str
    #: The consent wording the person was shown (None when it came through the JSON API,
    #: whose form drip does not see).
    consent_text: str | None = None


class OptinQueries(StoreBase):
    def record_optin_request(self, *, email: str, sequence_key: str, name: str, timezone: str,
                             ip: str | None, user_agent: str | None, text_version: str,
                             now: datetime, consent_text: str | None = None) -> int:
        payload: dict[str, Any] = {"sequence": sequence_key, "name": name,
                                   "timezone": timezone, "ip": ip, "user_agent": user_agent,
                                   "text_version": text_version, "consent_text": consent_text}
        with self._session() as s, s.begin():
            event = Event(kind=OPTIN_REQUESTED, email=email, occurred_at=now, received_at=now,
                          detail=f"asked to join {sequence_key}", payload=payload)
            s.add(event)
            s.flush()
            return int(event.id)

    def optin_request(self, request_id: int) -> OptinRequest:
        with self._session() as s:
            row = s.execute(select(Event.email, Event.occurred_at, Event.payload)
                            .where(Event.id == request_id, Event.kind == OPTIN_REQUESTED)
                            ).first()
        if row is None or not isinstance(row[2], dict) or row[0] is None:
            raise NotFound("That confirmation link is not valid.")
        p = row[2]
        return OptinRequest(request_id, str(row[0]), str(p["sequence"]), str(p.get("name") or ""),
                            str(p.get("timezone") or "UTC"), as_utc(row[1]), p.get("ip"),
                            p.get("user_agent"), str(p.get("text_version") or ""),
                            p.get("consent_text"))

    def confirmation_unsent(self, request_id: int, now: datetime) -> None:
        """Queue the request's confirmation email to be tried again (once per request)."""
        with self._session() as s, s.begin():
            email = s.execute(select(Event.email).where(Event.id == request_id)).scalar()
            s.execute(self._insert(Event).values(
                provider_event_id=f"{OPTIN_UNSENT}:{request_id}", kind=OPTIN_UNSENT,
                email=email, occurred_at=now, received_at=now,
                detail="confirmation email not sent yet", payload={"request_id": request_id},
            ).on_conflict_do_nothing(index_elements=["provider_event_id"]))

    def unsent_confirmations(self, limit: int = 100) -> list[OptinRequest]:
        """The requests whose confirmation email is still to go, oldest first."""
        with self._session() as s:
            ids = s.execute(select(Event.payload).where(Event.kind == OPTIN_UNSENT)
                            .order_by(Event.id).limit(limit)).scalars().all()
        found = []
        for payload in ids:
            try:
                found.append(self.optin_request(int((payload or {})["request_id"])))
            except (NotFound, KeyError, TypeError, ValueError):
                continue
        return found

    def confirmation_settled(self, request_id: int) -> None:
        """The confirmation email went, or never will (expired, suppressed): unqueue it."""
        with self._session() as s, s.begin():
            s.execute(delete(Event).where(
                Event.provider_event_id == f"{OPTIN_UNSENT}:{request_id}"))
