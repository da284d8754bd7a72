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
    if settings.backend == "smtp":
        from drip.providers.smtp import SMTPProvider

        return SMTPProvider(host=settings.smtp_host, port=settings.smtp_port,
                            user=settings.smtp_user, password=settings.smtp_password,
                            tls=settings.smtp_tls, connections=settings.smtp_connections,
                            now=now)
    if settings.backend == "sendgrid":
        from drip.providers.sendgrid import SendGridProvider

        return SendGridProvider(settings.sendgrid_api_key, host=settings.sendgrid_host,
                                timeout=settings.sendgrid_timeout,
                                sandbox=settings.sendgrid_sandbox)
    raise ConfigError(f"DRIP_BACKEND={settings.backend} is not a backend drip knows.")
