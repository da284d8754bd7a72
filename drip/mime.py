"""An email's RFC 5322 bytes (SMTP, the outbox), built once per content group and filled per
recipient.

`to_mime` (drip.message) builds each email with the email package, which costs about a
millisecond and a half per email. Here the group's bodies are split once around their
placeholders, and each recipient's bytes are the pieces joined with that recipient's
values, under headers written directly when they are plain ASCII. The result means the
same as `to_mime`'s: the same headers (RFC 8058 List-Unsubscribe per recipient), a
multipart/alternative of text and HTML in UTF-8, 8bit as the email package writes them.
Anything unusual (a header that needs RFC 2047 words or quoting, a line over 998 bytes, an
address outside ASCII) goes through the email package instead, for that email alone.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import format_datetime, make_msgid

from drip.errors import InvalidInput
from drip.message import (
    MIME_POLICY,
    PLAIN_ADDRESS,
    Content,
    Message,
    header_value,
    to_mime,
    value_of,
)
from drip.message import address as parsed_address

_PLACEHOLDER = re.compile(r"%%([a-z_]+(?::html)?)%%")
#: SMTP's line ending; the outbox writes files with "\n", as the email package does.
CRLF = "\r\n"
#: RFC 5322's limit for a line, without its CRLF.
MAX_LINE = 998
#: A display name the email package writes as it is: atext and spaces, no quoting needed.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]*")
_PLAIN_VALUE = re.compile(r"[\x20-\x7e]*")


@dataclass(frozen=True)
class Wire:
    """One email as SMTP sends it."""

    data: bytes
    message_id: str
    #: Its envelope holds an address outside ASCII: the server must offer SMTPUTF8.
    smtputf8: bool = False


class _Body:
    """One part's text split around its placeholders: literal bytes and value names."""

    def __init__(self, template: str, linesep: str) -> None:
        text = template.replace("\r\n", "\n").replace("\r", "\n")
        if not text.endswith("\n"):
            text += "\n"  # as set_content writes it
        parts = _PLACEHOLDER.split(text.replace("\n", linesep) if linesep != "\n" else text)
        self.pieces = [p.encode() for p in parts[0::2]]
        self.names = parts[1::2]
        self.ascii = all(p.isascii() for p in self.pieces)
        # the longest line in bytes, counting placeholders as empty, and the most
        # placeholders on one line: with the widest value, a bound on any filled line
        lines = text.split("\n")
        self.longest = max(len(_PLACEHOLDER.sub("", line).encode()) for line in lines)
        self.crowded = max(len(_PLACEHOLDER.findall(line)) for line in lines)

    def fill(self, values: Mapping[str, bytes], raw: Mapping[str, str]) -> bytes:
        pieces = self.pieces
        out = [pieces[0]]
        for name, piece in zip(self.names, pieces[1:], strict=True):
            value = values.get(name)
            if value is None:  # an HTML twin left out, or a placeholder fill leaves as it is
                text = value_of(raw, name)
                value = (f"%%{name}%%" if text is None else text).encode()
            out.append(value)
            out.append(piece)
        return b"".join(out)


class _Group:
    """What every email of one content group shares."""

    def __init__(self, content: Content, linesep: str) -> None:
        self.text = _Body(content.text, linesep)
        self.html = _Body(content.html, linesep)
        literal = b"".join(self.text.pieces + self.html.pieces)
        while True:  # the email package's boundary form, never found in the bodies
            boundary = f"==============={random.randrange(10**18, 10**19)}=="
            if boundary.encode() not in literal:
                break
        self.boundary = boundary
        self.crowded = max(self.text.crowded, self.html.crowded)
        self.longest = max(self.text.longest, self.html.longest)
        self.ascii = self.text.ascii and self.html.ascii
        n = linesep
        self.tail = (f"MIME-Version: 1.0{n}Content-Type: multipart/alternative; "
                     f"boundary=\"{boundary}\"{n}{n}--{boundary}{n}").encode()
        self.parts = tuple(
            f"Content-Type: text/{kind}; charset=\"utf-8\"{n}"
            f"Content-Transfer-Encoding: {cte}{n}{n}".encode()
            for kind in ("plain", "html") for cte in ("7bit", "8bit"))
        self.between = f"{n}--{boundary}{n}".encode()
        self.end = f"{n}--{boundary}--{n}".encode()


def _header(name: str, value: str, policy: EmailPolicy[EmailMessage]) -> str:
    """One header line, written directly when it is short printable ASCII, else folded and
    encoded by the email package (RFC 2047); InvalidInput if it would break the header."""
    header_value(name, value)
    if len(value) < MAX_LINE - len(name) - 2 and _PLAIN_VALUE.fullmatch(value) \
            and "=?" not in value:
        return f"{name}: {value}{policy.linesep}"
    return str(policy.header_factory(name, value).fold(policy=policy))


def _address(name: str, address: str) -> str:
    if PLAIN_ADDRESS.fullmatch(address) and _PLAIN_NAME.fullmatch(name) \
            and name == name.strip():
        return f"{name} <{address}>" if name else address
    return str(parsed_address(name, address))


class MimeWriter:
    """Writes emails as bytes, keeping each content group's split bodies between batches."""

    def __init__(self, linesep: str = CRLF, groups: int = 64) -> None:
        self._groups: dict[tuple[str, str], _Group] = {}
        self._room = groups
        self._linesep = linesep
        self._policy = MIME_POLICY.clone(linesep=linesep)

    def _group(self, content: Content) -> _Group:
        key = (content.key, content.content_hash)
        group = self._groups.get(key)
        if group is None:
            if len(self._groups) >= self._room:
                self._groups.clear()
            group = self._groups[key] = _Group(content, self._linesep)
        return group

    def write(self, message: Message, *, sent_at: datetime) -> Wire:
        """`message` as SMTP bytes; InvalidInput if this one email cannot be written."""
        group = self._group(message.content)
        raw = message.values
        encoded = {name: value.encode() for name, value in raw.items()}
        widest = max(map(len, encoded.values()), default=0)
        plain = (message.to_email.isascii() and message.from_email.isascii()
                 and group.longest + group.crowded * widest <= MAX_LINE
                 and not any("\n" in v or "\r" in v or group.boundary in v
                             for v in raw.values()))
        if not plain:
            return _through_email_package(message, sent_at, self._policy)
        domain = message.from_email.rsplit("@", 1)[-1]
        message_id = make_msgid(idstring=f"drip.{message.delivery_id}", domain=domain)
        policy = self._policy
        try:
            head = [
                _header("Subject", message.subject(), policy),
                _header("From", _address(message.from_name, message.from_email), policy),
                _header("To", _address(message.to_name, message.to_email), policy),
                _header("Date", format_datetime(sent_at), policy),
                _header("Message-ID", message_id, policy),
            ]
            head.extend(_header(name, value, policy)
                        for name, value in message.headers().items())
        except ValueError as exc:
            raise _unwritable(message, exc) from None
        ascii_values = all(map(bytes.isascii, encoded.values()))
        text = group.text.fill(encoded, raw)
        html = group.html.fill(encoded, raw)
        eight = 0 if group.ascii and ascii_values else 1  # 7bit or 8bit, as set_content picks
        data = b"".join(["".join(head).encode(), group.tail, group.parts[eight], text,
                         group.between, group.parts[2 + eight], html, group.end])
        return Wire(data, message_id)


def _unwritable(message: Message, exc: Exception) -> InvalidInput:
    return InvalidInput(
        f"The email to {message.to_email!r} cannot be written: {exc}. Fix the subscriber's "
        f"name (drip subscriber {message.to_email}) or the subject, then `drip retry` "
        f"delivery {message.delivery_id}.")


def _through_email_package(message: Message, sent_at: datetime,
                           policy: EmailPolicy[EmailMessage]) -> Wire:
    """The unusual email, written by the email package as `to_mime` builds it."""
    mime = to_mime(message, sent_at=sent_at)
    international = not (message.to_email.isascii() and message.from_email.isascii())
    if international:
        policy = policy.clone(utf8=True)
    return Wire(mime.as_bytes(policy=policy), str(mime["Message-ID"]), smtputf8=international)
