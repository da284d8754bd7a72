"""One email as drip hands it to a provider: shared content plus per-recipient values.

Content is rendered once per group (same step, variant and nudge) with
placeholders such as %%first_name%%; each recipient's values fill them in. The
SendGrid provider sends the placeholders as substitutions; the others call
`subject()`, `html()` and `text()`. The unsubscribe headers are set here and
nowhere else.
"""

from __future__ import annotations

import email.policy
import html as htmllib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from drip.errors import ConfigError, InvalidInput

#: The per-recipient values a template can print. Templates cannot branch on them.
RECIPIENT_FIELDS = (
    "first_name",
    "email",
    "unsubscribe_url",
    "pause_url",
    "checkpoint_passed_url",
    "checkpoint_not_yet_url",
    "checkpoint_repeat_url",
    "preferences_url",
)
#: Values drip builds itself from characters that HTML leaves alone (signed tokens under
#: DRIP_BASE_URL, which settings refuse if it holds & < > " or '): their HTML form is the
#: same text, so the HTML part uses them as they are and no escaped twin is sent.
HTML_SAFE_FIELDS = frozenset(
    {"unsubscribe_url", "pause_url", "checkpoint_passed_url", "checkpoint_not_yet_url",
     "checkpoint_repeat_url", "preferences_url"})
HTML_SPECIAL = re.compile(r"[&<>\"']")
_PLACEHOLDER = re.compile(r"%%([a-z_]+(?::html)?)%%")


def placeholder(name: str, *, html: bool = False) -> str:
    return f"%%{name}:html%%" if html and name not in HTML_SAFE_FIELDS else f"%%{name}%%"


def html_placeholders(markup: str) -> str:
    """Point the placeholders in an HTML part at their HTML-escaped values."""
    return _PLACEHOLDER.sub(lambda m: placeholder(m.group(1).removesuffix(":html"), html=True),
                            markup)


#: The checkpoint links of an email and the answer each gives: one token, the answer in the
#: query (`Links.checkpoint`), so SendGrid can be sent the token's URL once.
CHECKPOINT_ANSWERS = {"checkpoint_passed_url": "passed", "checkpoint_not_yet_url": "not-yet",
                      "checkpoint_repeat_url": "repeat-last"}


def value_of(values: Mapping[str, str], name: str) -> str | None:
    """A placeholder's value. An HTML form that `recipient_values` left out is the plain
    value (it had nothing to escape); escaped here too, in case the values came from
    elsewhere."""
    value = values.get(name)
    if value is None and name.endswith(":html"):
        plain = values.get(name[:-5])
        if plain is not None:
            return htmllib.escape(plain, quote=True)
    return value


def fill(template: str, values: Mapping[str, str]) -> str:
    """Replace every placeholder with its value; an unknown one is left as it is."""
    if "%%" not in template:
        return template

    def one(match: re.Match[str]) -> str:
        value = value_of(values, match.group(1))
        return match.group(0) if value is None else value

    return _PLACEHOLDER.sub(one, template)


def recipient_values(raw: Mapping[str, str]) -> dict[str, str]:
    """The values for every placeholder; an HTML-escaped twin (`first_name:html`) only for a
    value that escaping changes, so a plain name or address is carried once."""
    values = dict(raw)
    for name, value in raw.items():
        if name not in HTML_SAFE_FIELDS:
            if HTML_SPECIAL.search(value):
                values[f"{name}:html"] = htmllib.escape(value, quote=True)
        elif HTML_SPECIAL.search(value):
            raise ConfigError(f"The {name} link {value!r} holds & < > \" or ', which HTML "
                              "would change; set DRIP_BASE_URL to a plain https address.")
    return values


@dataclass(frozen=True)
class Content:
    """What one group of recipients shares: rendered once, with placeholders."""

    key: str
    subject: str
    preheader: str
    html: str
    text: str
    content_hash: str


@dataclass(frozen=True)
class Message:
    """One email to one recipient, ready for any provider."""

    delivery_id: int
    enrollment_id: int
    sequence_key: str
    step_key: str
    variant: str
    to_email: str
    to_name: str
    from_email: str
    from_name: str
    content: Content
    values: Mapping[str, str] = field(default_factory=dict)
    nudge: str | None = None
    test: bool = False
    #: A message to the coach or a confirmation request: no list, so no unsubscribe headers.
    transactional: bool = False

    @property
    def unsubscribe_url(self) -> str:
        return self.values.get("unsubscribe_url", "")

    def subject(self) -> str:
        subject = fill(self.content.subject, self.values)
        return f"[TEST] {subject}" if self.test else subject

    def html(self) -> str:
        return fill(self.content.html, self.values)

    def text(self) -> str:
        return fill(self.content.text, self.values)

    def headers(self) -> dict[str, str]:
        """Headers every email carries: RFC 8058 one-click unsubscribe, and drip's ids."""
        if self.transactional:
            return {"X-Drip-Delivery": str(self.delivery_id)}
        return {
            "List-Unsubscribe": f"<{self.unsubscribe_url}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "X-Drip-Delivery": str(self.delivery_id),
        }

    @property
    def categories(self) -> tuple[str, str]:
        return (self.sequence_key, f"{self.sequence_key}:{self.step_key}")


# Headers are not folded below the RFC 5322 hard limit of 998: a folded List-Unsubscribe
# begins with whitespace, which some receivers do not strip before parsing the URL.
MIME_POLICY = email.policy.default.clone(max_line_length=998)


#: What no header may hold, written or encoded: a line break would start a new header.
_BREAKS_HEADER = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def header_value(name: str, value: str) -> str:
    """`value` if it can go into header `name` as one line; InvalidInput if it holds a CR,
    LF or other control character, written out or inside an RFC 2047 encoded word (the
    email package decodes "=?utf-8?b?...?=" and would write the decoded line break)."""
    shown = str(MIME_POLICY.header_factory("X-Drip-Check", value)) if "=?" in value else value
    if _BREAKS_HEADER.search(value) or _BREAKS_HEADER.search(shown):
        raise InvalidInput(f"the {name} header would hold a line break or a control "
                           f"character ({shown!r})")
    return value


#: An address the email package parses as it is: a dot-atom local part at a host name
#: (dots optional), ASCII only. Such an address, beside a display name with no control
#: character and no encoded word, always makes a one-line header, so `header_problem` need
#: not build an `Address` for it (that parse was a third of the SendGrid courier's time).
PLAIN_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*")


def address(display_name: str, addr_spec: str) -> Address:
    """The email package's `Address`, with ValueError (not the IndexError or
    HeaderParseError the package raises for some strings) for anything it cannot parse."""
    if not addr_spec.strip():
        raise ValueError("the email address is empty")
    try:
        return Address(display_name=display_name, addr_spec=addr_spec)
    except (IndexError, HeaderParseError) as exc:
        raise ValueError(f"{addr_spec!r} is not an email address") from exc


def _address_problem(name: str, display_name: str, addr_spec: str) -> None:
    """Raise ValueError if header `name` cannot hold this address on one line."""
    if (PLAIN_ADDRESS.fullmatch(addr_spec) and "=?" not in display_name
            and "=?" not in addr_spec and not _BREAKS_HEADER.search(display_name)):
        return
    header_value(name, str(address(display_name, addr_spec)))


def header_problem(message: Message) -> str | None:
    """Why one of the headers a provider writes for `message` (Subject, From, To and the
    list headers) cannot be written, or None. For providers that build no MIME themselves
    (SendGrid): the same check `to_mime` makes."""
    try:
        header_value("Subject", message.subject())
        _address_problem("From", message.from_name, message.from_email)
        _address_problem("To", message.to_name, message.to_email)
        for name, value in message.headers().items():
            header_value(name, value)
    except ValueError as exc:
        return f"The email to {message.to_email!r} cannot be written: {exc}."
    return None


def _set(mime: EmailMessage, name: str, value: str | Address) -> None:
    """Every header drip writes goes through here."""
    header_value(name, str(value))
    mime[name] = value


def to_mime(message: Message, *, sent_at: datetime) -> EmailMessage:
    """The message as RFC 5322 with a plain-text and an HTML part; InvalidInput if this one
    email cannot be written (a line break in a stored name, say), so a provider can fail
    that email alone and send the rest of its batch."""
    mime = EmailMessage(policy=MIME_POLICY)
    try:
        _set(mime, "Subject", message.subject())
        _set(mime, "From", address(message.from_name, message.from_email))
        _set(mime, "To", address(message.to_name, message.to_email))
        _set(mime, "Date", format_datetime(sent_at))
        domain = message.from_email.rsplit("@", 1)[-1]
        _set(mime, "Message-ID", make_msgid(idstring=f"drip.{message.delivery_id}",
                                            domain=domain))
        for name, value in message.headers().items():
            _set(mime, name, value)
    except ValueError as exc:
        raise InvalidInput(
            f"The email to {message.to_email!r} cannot be written: {exc}. Fix the subscriber's "
            f"name (drip subscriber {message.to_email}) or the subject, then `drip retry` "
            f"delivery {message.delivery_id}.") from None
    mime.set_content(message.text())
    mime.add_alternative(message.html(), subtype="html")
    return mime
