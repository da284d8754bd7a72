"""Prints each email instead of sending it: for trying drip out in a terminal."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TextIO

from drip.message import Message, to_mime
from drip.providers.base import SendResult


class ConsoleProvider:
    name = "console"

    def __init__(self, stream: TextIO, now: Callable[[], datetime]) -> None:
        self.stream = stream
        self._now = now

    def send_batch(self, messages: Sequence[Message]) -> list[SendResult]:
        results = []
        for message in messages:
            mime = to_mime(message, sent_at=self._now())
            self.stream.write("-" * 72 + "\n")
            for name, value in mime.items():
                self.stream.write(f"{name}: {value}\n")
            self.stream.write("\n" + message.text() + "\n")
            results.append(SendResult(message.delivery_id, "accepted",
                                      message_id=str(mime["Message-ID"])))
        self.stream.flush()
        return results

    def close(self) -> None:
        return None
