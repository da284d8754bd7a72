"""The pure rules of tags (drip.tags): how a tag is written, which variant a branch picks,
which tag ends a sequence, what an answer sets, and an import's tags column."""

from __future__ import annotations

import pytest

from drip.errors import InvalidInput
from drip.import_formats import column_map
from drip.imports import parse_csv
from drip.planner import base_variant, branch_of, decide
from drip.sequence import load_library
from drip.tags import (
    answer_tags,
    branch_variant,
    clean_tag,
    exit_tag,
    parse_tags,
    settable_tags,
    tags_stop_nudges,
)
from tests.conftest import FIXTURES

TAGGED = load_library(FIXTURES / "tagged" / "sequences").sequence("tagged")


def test_a_tag_is_written_one_way() -> None:
    assert clean_tag("  Clinician Referral ") == "clinician-referral"
    assert clean_tag('"VIP_customer"') == "vip-customer"
    for bad in ("", "   ", "no!", "a" * 41, "-leading"):
        with pytest.raises(InvalidInput, match="is not a tag"):
            clean_tag(bad)


def test_tags_from_a_cell_or_a_list() -> None:
    assert parse_tags("a, b;c ,, a") == ["a", "b", "c"]
    assert parse_tags(["struggling"]) == ["struggling"]
    assert parse_tags(None) == [] and parse_tags("") == []
    with pytest.raises(InvalidInput, match="list of tags"):
        parse_tags({"tag": "x"})
    with pytest.raises(InvalidInput, match="must be text"):
        parse_tags([3])


def test_a_branch_picks_the_tagged_version_of_the_main_email_only() -> None:
    assert branch_variant(TAGGED, "week-2", "main", {"struggling"}) == "main/struggling"
    assert branch_variant(TAGGED, "week-2", "main+reminder", {"struggling"}) == (
        "main/struggling+reminder")
    assert branch_variant(TAGGED, "week-2", "main", {"other"}) == "main"
    assert branch_variant(TAGGED, "week-2", "main", set()) == "main"
    # a repeat or a waiting email is never swapped, and a step without branches keeps main
    assert branch_variant(TAGGED, "week-2", "waiting", {"struggling"}) == "waiting"
    assert branch_variant(TAGGED, "week-1", "main", {"struggling"}) == "main"
    assert base_variant("main/struggling+reminder") == "main"
    assert branch_of("main/struggling+reminder") == "struggling"
    assert branch_of("main+reminder") is None


def test_a_branch_email_asks_the_same_checkpoint_and_leads_to_the_same_place() -> None:
    """Silence after the gentle version of the gate email waits, exactly as after the
    main one: a branch never moves a runner past a gate."""
    from datetime import UTC, datetime

    from drip.planner import Sent
    at = datetime(2026, 3, 2, tzinfo=UTC)
    history = [Sent(1, "week-1", "main", None, "passed", at)]
    for variant in ("main", "main/struggling"):
        sent = [*history, Sent(2, "week-2", variant, None, None, at)]
        decision = decide(TAGGED, sent)
        assert decision is not None and (decision.step_key, decision.variant) == (
            "week-2", "waiting")


def test_a_tag_goal_and_on_answer() -> None:
    assert exit_tag(TAGGED, {"clinician-referral"}) == "clinician-referral"
    assert exit_tag(TAGGED, {"struggling"}) is None
    assert not tags_stop_nudges(TAGGED, {"clinician-referral"})
    assert answer_tags(TAGGED, "week-1", "not-yet") == ["struggling"]
    assert answer_tags(TAGGED, "week-1", "passed") == []
    assert answer_tags(TAGGED, "gone", "not-yet") == []
    library = load_library(FIXTURES / "tagged" / "sequences")
    assert settable_tags(library, ["program-customer"]) == {
        "program-customer", "clinician-referral", "struggling"}


def test_an_import_reads_a_tags_column_and_names_the_line_of_a_bad_one() -> None:
    data = (b"email,name,tags\n"
            b"ana@example.com,Ana,\"struggling, VIP Customer\"\n"
            b"bo@example.com,Bo,ok!\n"
            b"ana@example.com,,clinician-referral\n")
    parsed = parse_csv(data)
    (ana,) = parsed.rows
    assert ana.tags == ("struggling", "vip-customer", "clinician-referral")
    (problem,) = parsed.problems
    assert problem.line == 3 and "'ok!' is not a tag" in problem.message
    shopify = parse_csv(b"Email,First Name,Accepts Email Marketing,Tags\n"
                        b"cy@example.com,Cy,yes,\"repeat-buyer, wholesale\"\n",
                        columns=column_map("shopify"))
    assert shopify.rows[0].tags == ("repeat-buyer", "wholesale")


def test_a_branch_never_changes_where_a_journey_goes() -> None:
    """Over many journeys of the tagged program (silence, "not yet", "passed"), sending the
    tagged version of every main email leads to exactly the same next step each time:
    so a tag can never take a runner past the gate."""
    from datetime import UTC, datetime, timedelta
    from itertools import product

    from drip.planner import Sent

    at = datetime(2026, 3, 2, tzinfo=UTC)
    for answers in product(["passed", "not-yet", None], repeat=4):
        history: list[Sent] = []
        for index, answer in enumerate(answers):
            decision = decide(TAGGED, history)
            if decision is None or decision.hold is not None:
                break
            branched = [Sent(s.seq_no, s.step_key,
                             branch_variant(TAGGED, s.step_key, s.variant, {"struggling"}),
                             None, s.answer, s.went_out_at) for s in history]
            other = decide(TAGGED, branched)
            assert other is not None
            assert (other.step_key, base_variant(other.variant), other.hold) == (
                decision.step_key, base_variant(decision.variant), decision.hold)
            history.append(Sent(index + 1, decision.step_key, decision.variant, None, answer,
                                at + timedelta(days=7 * index)))
            if decision.step_key == "week-3":  # past the gate: only ever by a "passed"
                gate = [s for s in history if s.step_key == "week-2"]
                assert gate and gate[-1].answer == "passed", history
