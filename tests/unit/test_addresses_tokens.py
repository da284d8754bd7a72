"""Addresses and timezones are validated and normalised; links are signed and tamper-proof."""

from __future__ import annotations

from pathlib import Path

import pytest

from drip.addresses import normalise_email, validate_timezone
from drip.errors import BadSignature, ConfigError, InvalidAddress, InvalidTimezone
from drip.links import Links
from drip.message import fill, html_placeholders, recipient_values
from drip.settings import load_settings
from drip.tokens import Signer


def test_emails_are_normalised_to_one_form() -> None:
    assert normalise_email("  Ana.Runner@Example.COM ") == "ana.runner@example.com"


@pytest.mark.parametrize("bad", ["", "ana", "ana@", "@example.com", "ana@@example.com",
                                 "ana example@example.com", "ana@example"])
def test_invalid_addresses_are_refused_with_the_reason(bad: str) -> None:
    with pytest.raises(InvalidAddress) as info:
        normalise_email(bad)
    assert "address" in str(info.value)


def test_timezones_must_be_iana_names() -> None:
    assert validate_timezone("Australia/Sydney") == "Australia/Sydney"
    with pytest.raises(InvalidTimezone, match="Did you mean Europe/London"):
        validate_timezone("europe/london")
    with pytest.raises(InvalidTimezone):
        validate_timezone("Mars/Olympus_Mons")
    with pytest.raises(InvalidTimezone):
        validate_timezone("../../etc/passwd")


def test_tokens_round_trip_and_refuse_tampering() -> None:
    signer = Signer("secret")
    token = signer.make("unsubscribe", 12, 34)
    assert signer.read("unsubscribe", token) == [12, 34]
    with pytest.raises(BadSignature):
        signer.read("checkpoint", token)  # a token for one purpose opens no other
    with pytest.raises(BadSignature):
        Signer("other-secret").read("unsubscribe", token)
    refused = 0
    for index in range(len(token)):
        changed = token[:index] + ("A" if token[index] != "A" else "B") + token[index + 1:]
        try:
            values = signer.read("unsubscribe", changed)
        except BadSignature:
            refused += 1
        else:
            # The last character of a base64 field carries unused bits: changing only those
            # decodes to the same bytes. That is the same token, never a forged one.
            assert values == [12, 34], changed
    assert refused >= len(token) - 3  # at most the ends of the three base64 fields


@pytest.mark.parametrize("base", ["https://coach.example.com/?a=1&b=2", "https://x.test/\"q",
                                  "https://x.test/<b>", "https://x.test/it's"])
def test_a_base_url_that_html_would_change_is_refused(tmp_path: Path, base: str) -> None:
    # The links under DRIP_BASE_URL go into the HTML part unescaped (no :html twin is sent).
    with pytest.raises(ConfigError, match=r"DRIP_BASE_URL.*must not contain"):
        load_settings({"DRIP_BASE_URL": base, "DRIP_SECRET_KEY": "k",
                       "DRIP_VAR_DIR": str(tmp_path)})


def test_links_appear_once_and_other_values_twice_escaped() -> None:
    links = Links("https://coach.example.com", Signer("k"))
    values = recipient_values({"first_name": "O'Brien & <Co>", "email": "a&b@example.com",
                               "unsubscribe_url": links.unsubscribe(1, 2),
                               "pause_url": links.pause(2)})
    assert values["first_name:html"] == "O&#x27;Brien &amp; &lt;Co&gt;"
    assert values["email:html"] == "a&amp;b@example.com"
    assert "unsubscribe_url:html" not in values and "pause_url:html" not in values
    html = html_placeholders('<a href="%%unsubscribe_url%%">%%first_name%%</a>')
    assert html == '<a href="%%unsubscribe_url%%">%%first_name:html%%</a>'
    assert fill(html, values) == (f'<a href="{values["unsubscribe_url"]}">'
                                  "O&#x27;Brien &amp; &lt;Co&gt;</a>")
    with pytest.raises(ConfigError, match="pause_url link"):
        recipient_values({"pause_url": "https://x.test/p/a&b"})


REAL = {"DRIP_BACKEND": "sendgrid", "SENDGRID_API_KEY": "SG.k", "DRIP_SECRET_KEY": "k",
        "DRIP_BASE_URL": "https://coach.example.com",
        "DRIP_POSTAL_ADDRESS": "Coach Ltd, 9 High Street, Leeds LS1 1AA, UK"}


@pytest.mark.parametrize(("changes", "named"), [
    ({"DRIP_BASE_URL": ""}, "DRIP_BASE_URL"),  # the default, https://localhost:8000
    ({"DRIP_BASE_URL": "http://coach.example.com"}, "DRIP_BASE_URL"),
    ({"DRIP_BASE_URL": "https://127.0.0.1:8000"}, "DRIP_BASE_URL"),
    ({"DRIP_POSTAL_ADDRESS": ""}, "DRIP_POSTAL_ADDRESS"),  # the made-up default
    # a key generated into this machine's var/ is not the key the web app on another
    # machine (or started from another folder) checks links with: unsubscribes would 404
    ({"DRIP_SECRET_KEY": ""}, "DRIP_SECRET_KEY"),
    ({"DRIP_BACKEND": "smtp", "DRIP_SMTP_HOST": "smtp.example.net", "DRIP_BASE_URL": ""},
     "DRIP_BASE_URL"),
])
def test_real_email_needs_a_public_https_base_url_and_a_postal_address(
        tmp_path: Path, changes: dict[str, str], named: str) -> None:
    # Real inboxes get the unsubscribe link (RFC 8058 wants https, and a localhost link
    # unsubscribes no one) and the postal address the law asks for, so the defaults,
    # which only suit trying drip out, are refused with the variable to set.
    with pytest.raises(ConfigError, match=named):
        load_settings({**REAL, **changes, "DRIP_VAR_DIR": str(tmp_path)})
    assert list(tmp_path.iterdir()) == []  # refused before anything was written
    assert load_settings({**REAL, "DRIP_VAR_DIR": str(tmp_path)}).sends_for_real
    for local in ({"DRIP_BACKEND": "sendgrid", "DRIP_SENDGRID_SANDBOX": "1"},
                  {"DRIP_BACKEND": "sendgrid", "DRIP_SENDGRID_HOST": "http://127.0.0.1:9"},
                  {"DRIP_BACKEND": "smtp", "DRIP_SMTP_HOST": "127.0.0.1"},
                  {"DRIP_BACKEND": "outbox"}):  # nothing reaches an inbox: defaults are fine
        load_settings({**REAL, **changes, **local, "DRIP_VAR_DIR": str(tmp_path)})


def test_a_key_change_keeps_the_links_already_sent_working() -> None:
    from drip.runtime import links_of
    from drip.settings import load_settings

    before = Signer("old-key")
    in_inboxes = before.make("unsubscribe", 12, 34)
    settings = load_settings({"DRIP_SECRET_KEY": "new-key",
                              "DRIP_SECRET_KEY_FALLBACKS": " older-key , old-key "})
    assert settings.secret_key_fallbacks == ("older-key", "old-key")
    signer = links_of(settings).signer
    assert signer.read("unsubscribe", in_inboxes) == [12, 34]  # signed before the change
    fresh = signer.make("unsubscribe", 56, 78)
    assert Signer("new-key").read("unsubscribe", fresh) == [56, 78]  # signed with the new key
    with pytest.raises(BadSignature):
        before.read("unsubscribe", fresh)
    with pytest.raises(BadSignature):  # once the old key is dropped, its links stop working
        Signer("new-key").read("unsubscribe", in_inboxes)


def test_a_misspelt_coach_timezone_stops_start_up_with_a_suggestion() -> None:
    from drip.errors import ConfigError
    from drip.settings import load_settings

    with pytest.raises(ConfigError, match=r"DRIP_COACH_TIMEZONE 'Europe/Londn' is not an IANA "
                                          r"timezone.*Did you mean Europe/London\?$"):
        load_settings({"DRIP_SECRET_KEY": "k", "DRIP_COACH_TIMEZONE": "Europe/Londn"})
    assert load_settings({"DRIP_SECRET_KEY": "k",
                          "DRIP_COACH_TIMEZONE": "Europe/London"}).coach_timezone == "Europe/London"


@pytest.mark.parametrize("name", ["=?utf-8?b?QW5hDQpCY2M6IHZAZXZpbC50ZXN0?=", "Dayna\r\nBcc: x"])
def test_a_from_name_that_would_break_the_header_stops_start_up(name: str) -> None:
    with pytest.raises(ConfigError, match="DRIP_FROM_NAME must be one line"):
        load_settings({"DRIP_SECRET_KEY": "k", "DRIP_FROM_NAME": name})


def test_trusted_proxies_are_addresses_or_networks() -> None:
    assert load_settings({"DRIP_SECRET_KEY": "k"}).trusted_proxies == ()
    assert load_settings({"DRIP_SECRET_KEY": "k", "DRIP_TRUSTED_PROXIES": "127.0.0.1, 10.0.0.0/8"}
                         ).trusted_proxies == ("127.0.0.1", "10.0.0.0/8")
    with pytest.raises(ConfigError, match="'nope' is not an IP address"):
        load_settings({"DRIP_SECRET_KEY": "k", "DRIP_TRUSTED_PROXIES": "nope"})


@pytest.mark.parametrize("name,clean", [
    ("=?utf-8?b?QW5hDQpCY2M6IHZAZXZpbC50ZXN0?=", "Ana Bcc: v@evil.test"),
    ("=?utf-8?q?Zo=C3=AB?= Smith", "Zoë Smith"), ("Ana\r\nBcc: x", "Ana Bcc: x"),
    ("a =? b ?= c", "a =? b ?= c"), ("Zoë O'Brien", "Zoë O'Brien")])
def test_names_are_one_line_with_encoded_words_decoded(name: str, clean: str) -> None:
    from drip.addresses import clean_name

    assert clean_name(name) == clean
