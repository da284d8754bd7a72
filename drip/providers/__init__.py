"""Email providers behind one interface; `make_provider` picks one from the settings."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime

from drip.errors import ConfigError
from drip.providers.base import Provider, SendResult, Verdict
from drip.settings import Settings

__all__ = ["Provider", "SendResult", "Verdict", "make_provider"]


def make_provider(settings: Settings, now: Callable[[], datetime]) -> Provider:
    if settings.backend == "outbox":
        from drip.providers.outbox import OutboxProvider

        return OutboxProvider(settings.outbox_dir, now)
    if settings.backend == "console":
        from drip.providers.console import ConsoleProvider

        return ConsoleProvider(sys.stdout, now)
    raise ConfigError(
        f"DRIP_BACKEND={settings.backend} is not available in this version; "
        "use outbox or console."
    )
