"""`header_problem` skips building an `Address` for plain addresses; it must agree with the
full check `to_mime` makes for every address and name, plain or not."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from drip.message import PLAIN_ADDRESS, Content, Message, address, header_problem, header_value

CONTENT = Content("k", "Week 1", "", "<p>hi</p>", "hi", "h")


def message(to_email: str, to_name: str) -> Message:
    return Message(1, 1, "pht", "week-1", "main", to_email, to_name, "coach@example.com",
                   "Dayna", CONTENT, {"unsubscribe_url": "https://drip.test/u/x"})


def full_check(to_email: str, to_name: str) -> bool:
    try:
        header_value("To", str(address(to_name, to_email)))
    except ValueError:
        return False
    return True


@given(st.from_regex(PLAIN_ADDRESS, fullmatch=True), st.text(max_size=30))
def test_a_plain_address_passes_exactly_when_the_full_check_passes(address: str,
                                                                    name: str) -> None:
    assert (header_problem(message(address, name)) is None) == full_check(address, name)


@given(st.text(max_size=30), st.text(max_size=30))
def test_any_address_agrees_with_the_full_check(address: str, name: str) -> None:
    assert (header_problem(message(address, name)) is None) == full_check(address, name)


def test_the_problems_a_provider_must_refuse_are_still_found() -> None:
    assert header_problem(message("runner@example.com", "Ann")) is None
    assert header_problem(message("runner@example.com", "Ann\r\nBcc: x@evil.test"))
    assert header_problem(message("runner@example.com", "=?utf-8?q?A=0D=0ABcc:_x?="))
    assert header_problem(message("runner@exa mple.com", "Ann"))
    assert header_problem(message("runner\n@example.com", "Ann"))


def test_an_empty_address_is_a_problem_not_a_crash() -> None:
    assert header_problem(message("", "Ann")) == (
        "The email to '' cannot be written: the email address is empty.")
