"""Email addresses and timezones as drip accepts them: validated, normalised, explained."""

from __future__ import annotations

from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from drip.errors import InvalidAddress, InvalidTimezone


def normalise_email(raw: str) -> str:
    """Return the one stored form of an address, or raise InvalidAddress saying why.

    Addresses are compared case-insensitively, as every mailbox provider does in
    practice, so the stored form is lower-case. The part before the @ must be ASCII:
    SendGrid, most SMTP servers and the .eml outbox cannot send to any other (SMTPUTF8),
    so every provider accepts exactly what is stored. A non-ASCII domain is stored in its
    ASCII (IDNA) form, which every provider can send to.
    """
    import email_validator  # building its rules costs ~60 ms; most commands check no address

    text = (raw or "").strip()
    if not text:
        raise InvalidAddress("The email address is empty; give an address such as ana@example.com.")
    try:
        result = email_validator.validate_email(
            text, check_deliverability=False, allow_smtputf8=False
        )
    except email_validator.EmailNotValidError as exc:
        local = text.rpartition("@")[0]
        extra = (" drip sends only to addresses whose part before the @ is plain ASCII."
                 if not local.isascii() else "")
        raise InvalidAddress(f"'{text}' is not a valid email address: {exc}{extra}") from None
    return str(result.ascii_email or result.normalized).lower()


def clean_name(raw: str, limit: int | None = 200) -> str:
    """A person's name on one line, cut to `limit` (the column's size): RFC 2047 encoded
    words decoded, control characters dropped, whitespace (CR and LF too, which would break
    the To: header) folded.

    Every entry point (the form, purchases, imports, the CLI) cleans names here. An encoded
    word ("=?utf-8?b?...?=") is decoded because the email package would decode it when it
    writes the To: header, turning an encoded CR LF into a real line break (a Bcc:, say).
    """
    text = _one_line(raw)
    for _ in range(3):  # an encoded word may decode to another
        decoded = _one_line(_decoded_words(text)) if "=?" in text else text
        if decoded == text:
            break
        text = decoded
    else:
        text = text.replace("=?", "")  # still encoded after three rounds: not a name
    return text[:limit]


def _one_line(text: str) -> str:
    return " ".join("".join(c for c in text if c.isprintable() or c.isspace()).split())


def _decoded_words(text: str) -> str:
    """The text as a mail reader shows it: its encoded words decoded, as the email package
    decodes them (an unknown charset or bad base64 becomes U+FFFD or nothing, never an error)."""
    import email.policy

    return str(email.policy.default.header_factory("X-Name", text))


#: The regions of the IANA names a person picks from (the rest are aliases and legacy names).
REGIONS = ("Africa", "America", "Antarctica", "Arctic", "Asia", "Atlantic", "Australia",
           "Europe", "Indian", "Pacific")
MISSING_TIMEZONE = ("The timezone is missing; choose yours (such as America/Los_Angeles or "
                    "Europe/London, or UTC) so each email arrives in your morning.")


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    """The ZoneInfo for an IANA name, or InvalidTimezone with a hint (and its `suggestion`)."""
    text = (name or "").strip()
    if not text or text != name or "\\" in text or text.startswith(("/", ".")):
        hint = suggest_zone(text) if text else None
        extra = f" Did you mean {hint}?" if hint else ""
        raise InvalidTimezone(
            f"'{name}' is not an IANA timezone; "
            f"use a name such as Europe/London or America/New_York.{extra}",
            suggestion=hint)
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        hint = suggest_zone(text)
        extra = f" Did you mean {hint}?" if hint else ""
        raise InvalidTimezone(
            f"'{name}' is not an IANA timezone; use a name such as Europe/London.{extra}",
            suggestion=hint) from None


def validate_timezone(name: str) -> str:
    zone(name)
    return name


def require_timezone(name: str) -> str:
    """`validate_timezone`, where leaving it out is a mistake too (never a silent UTC)."""
    if not (name or "").strip():
        raise InvalidTimezone(MISSING_TIMEZONE)
    return validate_timezone(name)


def suggest_zone(text: str) -> str | None:
    """The IANA name someone probably meant: "london" -> Europe/London, "Los Angeles" ->
    America/Los_Angeles, "Europe/Londn" -> Europe/London; None when nothing is close."""
    import difflib

    names = available_timezones()
    lowered = {z.lower(): z for z in names}
    key = "_".join(text.strip().lower().replace("-", " ").split())
    if not key:
        return None
    if key in lowered:
        return lowered[key]
    cities = _cities()
    if key in cities:
        return cities[key]
    matches = difflib.get_close_matches(key, list(lowered), n=1, cutoff=0.8)
    if matches:
        return lowered[matches[0]]
    matches = difflib.get_close_matches(key, list(cities), n=1, cutoff=0.8)
    return cities[matches[0]] if matches else None


@lru_cache(maxsize=1)
def _cities() -> dict[str, str]:
    """The last part of each regional name, lower-case ("los_angeles"), to its full name."""
    found: dict[str, str] = {}
    for name in sorted(available_timezones()):
        if name.split("/", 1)[0] in REGIONS:
            found.setdefault(name.rsplit("/", 1)[-1].lower(), name)
    return found


@lru_cache(maxsize=1)
def zones_by_region() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Every regional IANA name, grouped by region and sorted: what a sign-up form offers."""
    groups: dict[str, list[str]] = {region: [] for region in REGIONS}
    for name in available_timezones():
        region = name.split("/", 1)[0]
        if region in groups and "/" in name:
            groups[region].append(name)
    return tuple((region, tuple(sorted(names))) for region, names in groups.items() if names)
