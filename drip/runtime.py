"""The composition root: settings in, a wired-up drip out (store, sequences, renderer, links)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from drip.clock import Clock, SystemClock
from drip.db import make_engine
from drip.dispatch import Dispatcher
from drip.links import Links
from drip.providers import Provider, make_provider
from drip.providers.base import ActivityFeed
from drip.render import Renderer, Sender
from drip.sequence import Library, load_library
from drip.settings import Settings
from drip.store import Store
from drip.tokens import Signer

if TYPE_CHECKING:
    from drip.catalog import Catalog


def sender_of(settings: Settings) -> Sender:
    """Who every email is from, and the postal address it prints."""
    return Sender(name=settings.from_name, email=settings.from_email,
                  postal_address=settings.postal_address, brand_name=settings.brand_name,
                  logo_url=settings.brand_logo_url, templates_dir=settings.templates_dir)


def links_of(settings: Settings) -> Links:
    return Links(settings.base_url, Signer(settings.secret_key, settings.secret_key_fallbacks))


@dataclass
class Drip:
    """Everything a command, the web app or the scheduler needs, built once per process."""

    settings: Settings
    store: Store
    clock: Clock = field(default_factory=SystemClock)
    _library: Library | None = None
    _renderer: Renderer | None = None
    _catalog: Catalog | None = None

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock | None = None) -> Drip:
        store = Store(make_engine(settings.database_url))
        store.outgoing_webhooks = bool(settings.webhook_targets)  # queue events only if posted
        return cls(settings=settings, store=store, clock=clock or SystemClock())

    @property
    def library(self) -> Library:
        if self._library is None:
            self._library = load_library(self.settings.sequences_dir)
        return self._library

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            # Only the web app and a few commands sell offers; the rest skip its models.
            from drip.catalog import load_catalog

            self._catalog = load_catalog(self.settings.sequences_dir, self.library)
        return self._catalog

    @property
    def sender(self) -> Sender:
        return sender_of(self.settings)

    @property
    def renderer(self) -> Renderer:
        if self._renderer is None:
            self._renderer = Renderer(self.settings.templates_dir, self.library, self.sender)
        return self._renderer

    @property
    def links(self) -> Links:
        return links_of(self.settings)

    def provider(self) -> Provider:
        return make_provider(self.settings, self.clock.now)

    def dispatcher(self, provider: Provider | None = None, worker: str | None = None) -> Dispatcher:
        chosen = provider or self.provider()
        return Dispatcher(
            store=self.store, library=self.library, renderer=self.renderer,
            provider=chosen, links=self.links, sender=self.sender,
            clock=self.clock, batch_size=self.settings.batch_size,
            lease_seconds=self.settings.lease_seconds, worker=worker,
            max_per_second=self.settings.max_per_second, settle=self.settler(chosen),
            circuit_wait=timedelta(seconds=self.settings.circuit_wait_seconds),
        )

    def settler(self, provider: Provider) -> Callable[[datetime], None] | None:
        """The reaper's settling of unknown emails, when DRIP_SENDGRID_ACTIVITY is on."""
        if not (self.settings.sendgrid_activity and isinstance(provider, ActivityFeed)):
            return None
        from drip import reconcile

        after = timedelta(seconds=self.settings.sendgrid_settle_seconds)
        rate = self.settings.sendgrid_activity_per_minute / 60
        return lambda now: reconcile.settle_next(self.store, provider.held, now,
                                                 settle_after=after, rate=rate)

    def close(self) -> None:
        self.store.engine.dispose()
