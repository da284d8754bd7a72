"""Every email drip ships, rendered by the real renderer for a sample subscriber.

The email tests look at these: each step and variant of sequences/pht-7-week.yaml (a main
email with the nudge its step names, so the nudge box shows), the opt-in confirmation
and the coach's digest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from drip.digest import Conversion, Digest, Person, SequenceDigest, digest_letter
from drip.links import Links
from drip.message import Message
from drip.optin import confirmation
from drip.planner import base_variant
from drip.render import Renderer, Sender, email_spec, every_email, with_utm
from drip.samples import sample_message
from drip.sequence import Library, load_library
from drip.tokens import Signer

ROOT = Path(__file__).resolve().parents[2]
SEQUENCE = "pht-7-week"
POSTAL = "Dayna's Running Lab, 1 Test Street, Springfield, OR 97477, USA"
CONFIRM_URL = "https://drip.test/confirm/sample-token"
LINKS = Links("https://drip.test", Signer("email-tests-key", ()))


@dataclass(frozen=True)
class Sample:
    """One email as a subscriber (or the coach) gets it, and what it must show."""

    name: str
    message: Message
    #: The checkpoint's (passed, not yet) links, when the email asks the checkpoint.
    checkpoint: tuple[str, str] | None
    #: The links that must be buttons: the checkpoint's, the nudge's, the letter's action.
    buttons: tuple[str, ...]

    @property
    def html(self) -> str:
        return self.message.html()

    @property
    def text(self) -> str:
        return self.message.text()


def sender(templates_dir: Path = ROOT / "templates", **brand: str) -> Sender:
    return Sender("Dayna", "coach@example.com", POSTAL, templates_dir=templates_dir, **brand)


def library() -> Library:
    return load_library(ROOT / "sequences")


def weekly_emails(the_sender: Sender | None = None) -> list[Sample]:
    """Each step and variant of the sample sequence once; a main email with its step's
    nudge (or none, if the step names none)."""
    lib = library()
    who = the_sender or sender()
    renderer = Renderer(ROOT / "templates", lib, who)
    sequence = lib.sequence(SEQUENCE)
    found: list[Sample] = []
    for seq, step_key, variant, nudge in every_email(lib):
        step = seq.step(step_key)
        wanted = step.nudge if base_variant(variant) == "main" else None
        if seq.key != SEQUENCE or nudge != wanted:
            continue
        content = renderer.content(SEQUENCE, step_key, variant, nudge)
        message = sample_message(content, sequence, who, LINKS, step_key=step_key,
                                 variant=variant, nudge=nudge)
        values = message.values  # signed links carry a time: use the ones it was filled with
        asks = email_spec(sequence, step_key, variant).has_checkpoint
        checkpoint = ((values["checkpoint_passed_url"], values["checkpoint_not_yet_url"])
                      if asks else None)
        buttons = list(checkpoint or ())
        offer = lib.offers.get(nudge) if nudge else None
        if offer is not None:
            buttons.append(with_utm(offer.url, SEQUENCE, step_key))
        if "%%checkpoint_repeat_url%%" in content.html:
            buttons.append(values["checkpoint_repeat_url"])
        found.append(Sample(f"{step_key}-{variant}" + (f"-{nudge}" if nudge else ""), message,
                            checkpoint, tuple(buttons)))
    return found


def confirmation_email(the_sender: Sender | None = None) -> Sample:
    message = confirmation(the_sender or sender(), "alexandra@example.com", "Alexandra",
                           library().sequence(SEQUENCE).name, CONFIRM_URL, 1)
    return Sample("confirmation", message, None, (CONFIRM_URL,))


def sample_digest() -> Digest:
    now = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
    name = library().sequence(SEQUENCE).name
    return Digest(now, datetime(2026, 2, 23, 7, 0, tzinfo=UTC), [SequenceDigest(
        key=SEQUENCE, name=name,
        by_week=[("not started", 1), ("Week 1", 4), ("Week 3", 2), ("Week 5", 3)],
        struggling=[Person("sam@example.com", "Sam Rivera",
                           "'not yet' 2 times in a row on week-3")],
        graduated=[Person("jo@example.com", "Jo Okafor", "graduated this week")],
        silent=[Person("lee@example.com", "", "no checkpoint answer since 16 Feb")],
        conversions=[Conversion("strength-assessment", "free strength assessment", 9, 2),
                     Conversion("12-week-program", "12-week strength program", 4, 1)],
        at_gate=[Person("kim@example.com", "Kim Baptiste",
                        "no answer to the week 5 checkpoint since 16 Feb, after 2 waiting "
                        "emails; paused")],
    )])


def digest_email(the_sender: Sender | None = None) -> Sample:
    who = the_sender or sender()
    content = digest_letter(sample_digest(), who)
    message = Message(delivery_id=0, enrollment_id=0, sequence_key="digest",
                      step_key="digest", variant="main", to_email="coach@example.com",
                      to_name="Dayna", from_email=who.email, from_name=who.name,
                      content=content, transactional=True)
    return Sample("digest", message, None, ())


def shipped_emails() -> list[Sample]:
    return [*weekly_emails(), confirmation_email(), digest_email()]
