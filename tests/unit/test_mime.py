"""drip.mime writes each email as the email package would mean it: the same headers (the
RFC 8058 pair per recipient), the same text and HTML, valid MIME, from shared pieces."""

from __future__ import annotations

import email
import email.policy
from dataclasses import replace
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest

from drip.errors import InvalidInput
from drip.message import MIME_POLICY, Content, Message, html_placeholders, recipient_values, to_mime
from drip.mime import MimeWriter

SENT_AT = datetime(2026, 3, 2, 12, 30, tzinfo=UTC)
CONTENT = Content(
    key="pht:week-1:main", subject="Week 1, %%first_name%%: settle the tendon",
    preheader="",
    html=html_placeholders('<p>Hi %%first_name%% — café</p>\n<a href="%%unsubscribe_url%%">'
                           'Unsubscribe</a> <a href="%%pause_url%%">Pause</a>\n'
                           '<p>%%email%%</p>\n.a line that starts with a dot\n'),
    text="Hi %%first_name%% — café\n\nUnsubscribe: %%unsubscribe_url%%\n%%unknown%%\n",
    content_hash="abc")
HEADERS = ("Subject", "From", "To", "Date", "List-Unsubscribe", "List-Unsubscribe-Post",
           "X-Drip-Delivery", "MIME-Version")


def message(name: str = "Ana Runner", address: str = "ana@example.com",
            first_name: str = "Ana", **changes: object) -> Message:
    values = recipient_values({
        "first_name": first_name, "email": address,
        "unsubscribe_url": f"https://coach.example.com/u/{address.split('@')[0]}.tok",
        "pause_url": "https://coach.example.com/p/tok"})
    base = Message(delivery_id=42, enrollment_id=7, sequence_key="pht", step_key="week-1",
                   variant="main", to_email=address, to_name=name,
                   from_email="coach@example.com", from_name="Dayna", content=CONTENT,
                   values=values)
    return replace(base, **changes)  # type: ignore[arg-type]


def parsed(data: bytes) -> EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)  # type: ignore[return-value]


def assert_same_meaning(ours: EmailMessage, theirs: EmailMessage) -> None:
    for name in HEADERS:
        assert str(ours[name]) == str(theirs[name]) if theirs[name] is not None else \
            ours[name] is None, name
    assert ours.get_content_type() == "multipart/alternative"
    assert ours["Message-ID"].endswith("@example.com>") and ".drip.42@" in ours["Message-ID"]
    for kind in ("plain", "html"):
        mine, other = ours.get_body((kind,)), theirs.get_body((kind,))
        assert mine is not None and other is not None
        assert mine.get_content() == other.get_content()
        assert mine.get_content_charset() == "utf-8"
    assert not ours.defects and all(not part.defects for part in ours.walk())


@pytest.mark.parametrize("recipient", [
    message(),
    message(name="J. Smith", first_name="J."),  # a name the email package quotes
    message(name="Zoë Brontë", first_name="Zoë"),  # RFC 2047 in To and in the Subject
    message(name=""),
    message(name="O'Brien & <Co>", first_name="O'Brien"),
    message(test=True),
    message(transactional=True),
    message(first_name="x" * 1200),  # a line over 998 bytes: the email package writes it
], ids=["plain", "quoted", "non-ascii", "no-name", "specials", "test", "transactional",
        "long-line"])
@pytest.mark.parametrize("linesep", ["\r\n", "\n"], ids=["smtp", "outbox"])
def test_the_bytes_mean_what_to_mime_means(recipient: Message, linesep: str) -> None:
    wire = MimeWriter(linesep=linesep).write(recipient, sent_at=SENT_AT)
    if linesep == "\r\n":
        assert b"\n" not in wire.data.replace(b"\r\n", b"")
    else:
        assert b"\r" not in wire.data
    assert max(len(line) for line in wire.data.split(linesep.encode())) <= 998
    ours = parsed(wire.data)
    on_the_wire = MIME_POLICY.clone(linesep=linesep, utf8=wire.smtputf8)  # as it is sent
    assert_same_meaning(ours, parsed(to_mime(recipient, sent_at=SENT_AT).as_bytes(
        policy=on_the_wire)))
    assert str(ours["Message-ID"]) == wire.message_id
    assert not wire.smtputf8


def test_an_address_the_email_package_cannot_write_fails_that_email_as_before() -> None:
    recipient = message(address="zoë@example.com")
    with pytest.raises(InvalidInput, match="non-ASCII"):
        to_mime(recipient, sent_at=SENT_AT)
    with pytest.raises(InvalidInput, match="non-ASCII"):
        MimeWriter().write(recipient, sent_at=SENT_AT)


def test_each_recipient_gets_its_own_values_and_unsubscribe_headers() -> None:
    writer = MimeWriter()
    first = parsed(writer.write(message(), sent_at=SENT_AT).data)
    second = parsed(writer.write(message(name="Ben Fast", address="ben@example.com",
                                         first_name="Ben"), sent_at=SENT_AT).data)
    assert first.get_boundary() == second.get_boundary()  # one group, built once
    assert first["List-Unsubscribe"] == "<https://coach.example.com/u/ana.tok>"
    assert second["List-Unsubscribe"] == "<https://coach.example.com/u/ben.tok>"
    assert second["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert second["To"] == "Ben Fast <ben@example.com>"
    assert second["Subject"] == "Week 1, Ben: settle the tendon"
    html = second.get_body(("html",))
    assert html is not None and "Hi Ben — café" in html.get_content()
    assert "ben.tok" in html.get_content() and "ana" not in html.get_content()
    assert "&amp; &lt;Co&gt;" in parsed(writer.write(message(first_name="A & <Co>"),
                                                     sent_at=SENT_AT).data
                                        ).get_body(("html",)).get_content()  # type: ignore[union-attr]
    text = second.get_body(("plain",))
    assert text is not None and "%%unknown%%" in text.get_content()  # left as fill leaves it


@pytest.mark.parametrize("change", [{"to_name": "Ana\r\nBcc: v@evil.test"},
                                    {"to_name": "=?utf-8?b?QW5hDQpCY2M6IHZAZXZpbC50ZXN0?="},
                                    {"from_name": "Dayna\nBcc: v@evil.test"}])
def test_a_header_hiding_a_line_break_is_refused(change: dict[str, str]) -> None:
    with pytest.raises(InvalidInput, match="cannot be written"):
        MimeWriter().write(message(**change), sent_at=SENT_AT)
