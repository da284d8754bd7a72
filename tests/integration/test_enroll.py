"""Joining a sequence: idempotent, normalised, and all-or-nothing on bad input."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, update

from drip.errors import Conflict, InvalidAddress, InvalidTimezone, SequenceError
from drip.models import Consent, Delivery, Enrollment, Subscriber
from drip.runtime import Drip
from drip.store import ConsentRecord
from drip.subscriptions import enroll


def counts(drip: Drip) -> tuple[int, int, int, int]:
    with drip.store.engine.connect() as conn:
        return tuple(  # type: ignore[return-value]
            conn.execute(select(func.count()).select_from(model)).scalar_one()
            for model in (Subscriber, Enrollment, Delivery, Consent)
        )


def test_enrolling_twice_changes_nothing(basic_drip: Drip) -> None:
    now = basic_drip.clock.now()
    first = enroll(basic_drip.store, basic_drip.library, email="Ana@Example.com",
                   sequence_key="basic", now=now, name="Ana", timezone="Europe/London")
    assert first.created
    before = counts(basic_drip)
    again = enroll(basic_drip.store, basic_drip.library, email=" ana@example.COM",
                   sequence_key="basic", now=now, timezone="Europe/London")
    assert not again.created and again.enrollment_id == first.enrollment_id
    assert counts(basic_drip)[:3] == before[:3]
    with basic_drip.store.engine.connect() as conn:
        emails = conn.execute(select(Subscriber.email)).scalars().all()
    assert emails == ["ana@example.com"]


@pytest.mark.parametrize(
    ("email", "timezone", "sequence", "error"),
    [
        ("not-an-address", "UTC", "basic", InvalidAddress),
        ("ana@example.com", "Europe/Londn", "basic", InvalidTimezone),
        ("ana@example.com", "UTC", "no-such-sequence", SequenceError),
    ],
)
def test_bad_input_writes_nothing(basic_drip: Drip, email: str, timezone: str, sequence: str,
                                  error: type[Exception]) -> None:
    with pytest.raises(error):
        enroll(basic_drip.store, basic_drip.library, email=email, sequence_key=sequence,
               now=basic_drip.clock.now(), timezone=timezone)
    assert counts(basic_drip) == (0, 0, 0, 0)


def test_consent_is_recorded_for_every_opt_in(basic_drip: Drip) -> None:
    enroll(basic_drip.store, basic_drip.library, email="ana@example.com", sequence_key="basic",
           now=basic_drip.clock.now(), source="optin")
    with basic_drip.store.engine.connect() as conn:
        rows = conn.execute(select(Consent.source, Consent.sequence_key)).all()
    assert [tuple(r) for r in rows] == [("optin", "basic")]


def test_an_unsubscribed_person_is_not_re_enrolled_by_hand(basic_drip: Drip) -> None:
    from drip.models import Subscriber as S

    enroll(basic_drip.store, basic_drip.library, email="ana@example.com", sequence_key="basic",
           now=basic_drip.clock.now())
    with basic_drip.store.engine.begin() as conn:
        conn.execute(S.__table__.update().values(unsubscribed_at=basic_drip.clock.now()))
        conn.execute(Enrollment.__table__.delete())
    with pytest.raises(Conflict, match="unsubscribed"):
        enroll(basic_drip.store, basic_drip.library, email="ana@example.com",
               sequence_key="basic", now=basic_drip.clock.now())


def test_re_entry_policies(basic_drip: Drip) -> None:
    from datetime import timedelta

    from drip import lifecycle
    from drip.sequence import RestartAfter

    library = basic_drip.library
    sequence = library.sequence("basic")
    now = basic_drip.clock.now()

    def join(policy: object, at: object = now, source: str = "optin",
             consent: ConsentRecord | None = None) -> object:
        seq = sequence.model_copy(update={"re_entry": policy})
        lib = type(library)(sequences={"basic": seq}, offers=library.offers)
        return enroll(basic_drip.store, lib, email="ana@example.com", sequence_key="basic",
                      now=at, source=source, consent=consent)  # type: ignore[arg-type]

    first = join("once")
    assert first.created  # type: ignore[attr-defined]
    assert not join("once").created  # type: ignore[attr-defined]
    restarted = join("restart")
    assert restarted.created and restarted.restarted  # type: ignore[attr-defined]
    rows = basic_drip.store.deliveries()
    assert sorted(r.state for r in rows) == ["cancelled", "scheduled"]
    # restart_after: only once the last cycle finished long enough ago.
    assert not join(RestartAfter(restart_after=30)).created  # type: ignore[attr-defined]
    # Someone who unsubscribed and opts in again starts afresh, whatever the policy.
    subscriber = basic_drip.store.subscriber_by_email("ana@example.com")
    lifecycle.unsubscribe(basic_drip.store, subscriber.id, now, source="test")
    with pytest.raises(Conflict, match="unsubscribed"):  # a source alone is no opt-in
        join("once", now + timedelta(days=1))
    again = join("once", now + timedelta(days=1),
                 consent=ConsentRecord(source="optin", confirmed_at=now + timedelta(days=1)))
    assert again.created  # type: ignore[attr-defined]


def test_names_with_line_breaks_are_stored_on_one_line(basic_drip: Drip) -> None:
    # A name goes into the To: header. A CR or LF there makes Python's email refuse the
    # whole message, and the outbox and SMTP providers then lose the answer for every
    # email of the batch (all 'unknown', never resent). The opt-in form already folds
    # whitespace; enroll, purchases and imports must too.
    from drip.catalog import Catalog, Product
    from drip.imports import import_rows, parse_csv
    from drip.purchases import Order, record_order

    now = basic_drip.clock.now()
    enroll(basic_drip.store, basic_drip.library, email="ana@example.com", sequence_key="basic",
           now=now, name="Ana\r\nBcc: evil@example.net")
    catalog = Catalog(products=[Product(key="kit", sequence="basic")])
    record_order(basic_drip.store, basic_drip.library, catalog,
                 Order("shop", "o-1", "bo@example.com", "kit", name="Bo\nLee"), now)
    record_order(basic_drip.store, basic_drip.library, Catalog(products=[Product(key="mug")]),
                 Order("shop", "o-2", "cy@example.com", "mug", name="Cy\rKay"), now)
    import_rows(basic_drip.store, basic_drip.library,
                parse_csv(b'email,name\ndi@example.com,"Di\rSmith"\n'), sequence_key="basic",
                now=now, file_name="people.csv")
    names = {s.email: s.name for s in (basic_drip.store.subscriber_by_email(e) for e in (
        "ana@example.com", "bo@example.com", "cy@example.com", "di@example.com"))}
    assert names == {"ana@example.com": "Ana Bcc: evil@example.net",
                     "bo@example.com": "Bo Lee", "cy@example.com": "Cy Kay",
                     "di@example.com": "Di Smith"}
    report = basic_drip.dispatcher().run_once()
    assert (report.sent_count, report.unknown) == (3, 0)


def test_an_email_that_cannot_be_written_fails_alone(basic_drip: Drip) -> None:
    # A name stored before names were put on one line still holds a line break. That one
    # email fails, saying why and how to fix it; the rest of its batch goes.
    now = basic_drip.clock.now()
    for email in ("ana@example.com", "bo@example.com", "cy@example.com"):
        enroll(basic_drip.store, basic_drip.library, email=email, sequence_key="basic",
               now=now, name="Runner")
    with basic_drip.store.engine.begin() as conn:  # as an older drip stored it
        conn.execute(update(Subscriber).where(Subscriber.email == "bo@example.com")
                     .values(name="Bo\r\nBcc: evil@example.net"))
    report = basic_drip.dispatcher().run_once()
    assert (report.sent_count, report.failed, report.unknown) == (2, 1, 0)
    (failed,) = [r for r in basic_drip.store.deliveries() if r.state == "failed"]
    assert failed.email == "bo@example.com"
    assert failed.last_error is not None and "cannot be written" in failed.last_error
    assert "drip retry" in failed.last_error
    written = sorted(p.name for p in basic_drip.settings.outbox_dir.glob("*.eml"))
    assert len(written) == 2
