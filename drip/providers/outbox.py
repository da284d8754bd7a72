"""The embedded default: one RFC 5322 .eml file per email in a folder any mail client opens."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from drip.errors import InvalidInput
from drip.message import Message
from drip.mime import MimeWriter
from drip.providers.base import SendResult


class OutboxProvider:
    name = "outbox"

    def __init__(self, directory: Path, now: Callable[[], datetime]) -> None:
        self.directory = directory
        self._now = now
        self._writer = MimeWriter(linesep="\n")  # as the email package writes a file

    def send_batch(self, messages: Sequence[Message]) -> list[SendResult]:
        self.directory.mkdir(parents=True, exist_ok=True)
        results = []
        for message in messages:
            sent_at = self._now()
            name = f"{sent_at:%Y%m%dT%H%M%SZ}-{message.delivery_id:08d}-{message.step_key}.eml"
            path = self.directory / name
            try:
                data = self._writer.write(message, sent_at=sent_at).data
            except InvalidInput as exc:  # this email alone: the rest of the batch goes
                results.append(SendResult(message.delivery_id, "permanent", reason=str(exc)))
                continue
            temporary = path.with_suffix(".tmp")
            with open(temporary, "wb") as handle:  # write, then rename: never half a file
                handle.write(data)
            os.replace(temporary, path)
            results.append(SendResult(message.delivery_id, "accepted", message_id=name))
        return results

    def close(self) -> None:
        return None
