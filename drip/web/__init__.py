"""The subscriber-facing web app: opt-in, one-click unsubscribe, checkpoints and webhooks."""

from drip.web.app import create_app

__all__ = ["create_app"]
