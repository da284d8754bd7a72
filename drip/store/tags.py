"""Queries for tags: set, removed and read per subscriber (drip.tags has the rules)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from drip.errors import NotFound
from drip.models import Subscriber, Tag
from drip.store._base import StoreBase


class TagQueries(StoreBase):
    """A subscriber's tags: `drip tag add/remove`, imports, the API, checkpoint answers."""

    def add_tags(self, subscriber_id: int, tags: Iterable[str], now: datetime) -> list[str]:
        """Set these tags on a subscriber; the ones that are new (a tag set twice is one)."""
        with self._session() as s, s.begin():
            return _add(self, s, subscriber_id, tags, now)

    def tag_people(self, tagged: Iterable[tuple[str, Iterable[str]]], now: datetime) -> int:
        """Set tags on people by address (an import's tags column); how many tags were new.
        An address nobody has is left out."""
        added = 0
        with self._session() as s, s.begin():
            for email, tags in tagged:
                found = s.scalar(select(Subscriber.id).where(Subscriber.email == email))
                if found is not None:
                    added += len(_add(self, s, int(found), tags, now))
        return added

    def tag_subscriber(self, email: str, tag: str, now: datetime) -> bool:
        """Set a tag on the subscriber with this address; True if they did not have it."""
        with self._session() as s, s.begin():
            return bool(_add(self, s, _subscriber_id(s, email), [tag], now))

    def untag_subscriber(self, email: str, tag: str) -> bool:
        """Remove a tag from the subscriber with this address; True if they had it."""
        with self._session() as s, s.begin():
            subscriber_id = _subscriber_id(s, email)
            removed = s.execute(delete(Tag).where(Tag.subscriber_id == subscriber_id,
                                                  Tag.tag == tag).returning(Tag.tag)).first()
            return removed is not None

    def tags_of(self, subscriber_id: int) -> list[str]:
        """A subscriber's tags, in alphabetical order."""
        with self._session() as s:
            return sorted(s.scalars(select(Tag.tag).where(Tag.subscriber_id == subscriber_id)))


def subscriber_tags(store: StoreBase, s: Session,
                    subscriber_ids: Iterable[int]) -> dict[int, set[str]]:
    """The tags of each subscriber, inside a transaction the caller holds (dispatch)."""
    ids = sorted(set(subscriber_ids))
    if not ids:
        return {}
    found: dict[int, set[str]] = {}
    for subscriber_id, tag in s.execute(select(Tag.subscriber_id, Tag.tag)
                                        .where(store._ids_in(Tag.subscriber_id, ids))):
        found.setdefault(int(subscriber_id), set()).add(str(tag))
    return found


def _subscriber_id(s: Session, email: str) -> int:
    found = s.scalar(select(Subscriber.id).where(Subscriber.email == email))
    if found is None:
        raise NotFound(f"No subscriber has the address {email}; check the spelling, or "
                       "enroll them first.")
    return int(found)


def _add(store: StoreBase, s: Session, subscriber_id: int, tags: Iterable[str],
         now: datetime) -> list[str]:
    new: list[str] = []
    for tag in dict.fromkeys(tags):
        inserted = s.execute(store._insert(Tag).values(
            subscriber_id=subscriber_id, tag=tag, created_at=now,
        ).on_conflict_do_nothing(index_elements=["subscriber_id", "tag"])
            .returning(Tag.tag)).first()
        if inserted is not None:
            new.append(tag)
    return new
