"""Queries for API keys: create, list, revoke, and find a key by its hash."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update

from drip.clock import as_utc
from drip.errors import Conflict
from drip.models import ApiKey
from drip.store._base import StoreBase


@dataclass(frozen=True)
class ApiKeyRow:
    name: str
    prefix: str
    scopes: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None


def _row(key: ApiKey) -> ApiKeyRow:
    return ApiKeyRow(key.name, key.prefix, tuple(key.scopes.split()), as_utc(key.created_at),
                     as_utc(key.revoked_at) if key.revoked_at else None)


class ApiKeyQueries(StoreBase):
    def create_api_key(self, *, name: str, key_hash: str, prefix: str,
                       scopes: tuple[str, ...], now: datetime) -> ApiKeyRow:
        statement = self._insert(ApiKey).values(
            name=name, key_hash=key_hash, prefix=prefix, scopes=" ".join(scopes),
            created_at=now).on_conflict_do_nothing(index_elements=["name"]).returning(ApiKey.id)
        with self._session() as s, s.begin():
            if s.execute(statement).first() is None:
                raise Conflict(f"An API key named '{name}' exists already (perhaps revoked); "
                               "choose another name.")
        return ApiKeyRow(name, prefix, scopes, now, None)

    def api_keys(self) -> list[ApiKeyRow]:
        with self._session() as s:
            return [_row(k) for k in s.scalars(select(ApiKey).order_by(ApiKey.id))]

    def revoke_api_key(self, name: str, now: datetime) -> bool:
        """Revoke a key by name; False if there is no such key, or it was revoked already."""
        with self._session() as s, s.begin():
            changed = s.execute(update(ApiKey).where(ApiKey.name == name,
                                                     ApiKey.revoked_at.is_(None))
                                .values(revoked_at=now).returning(ApiKey.id)).first()
            return changed is not None

    def api_key_by_hash(self, key_hash: str) -> ApiKeyRow | None:
        with self._session() as s:
            key = s.scalars(select(ApiKey).where(ApiKey.key_hash == key_hash)).first()
            return _row(key) if key is not None else None
