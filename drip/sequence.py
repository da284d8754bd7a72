"""Sequences and offers as the coach writes them: YAML files, validated into plain data.

A mistake is reported as a SequenceError naming the file, the line, the field
and the fix, before anyone receives an email.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import time
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from drip.errors import SequenceError
from drip.mistakes import misspelt_fields, unknown_field, yaml_mistake

STEP_KEY = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def _key_like(example: str) -> AfterValidator:
    """A key of lower-case letters, digits and hyphens; the error shows `example`."""
    def check(value: str) -> str:
        if not STEP_KEY.match(value):
            raise ValueError(f"must be lower-case letters, digits and hyphens, like {example}")
        return value
    return AfterValidator(check)


#: The key of a step, and the key of a sequence, offer or product.
StepKey = Annotated[str, _key_like("week-1")]
Key = Annotated[str, _key_like("pht-7-week")]
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
QUIET_START = time(21, 0)
QUIET_END = time(6, 0)
EXERCISES_FILE = "exercises.yaml"
#: Files in the sequences folder that are not sequences.
NOT_SEQUENCES = frozenset({"offers.yaml", "catalog.yaml", EXERCISES_FILE})
_SEND_AFTER = re.compile(r"^\s*(\d+)\s*(day|days|week|weeks)\s*$")


M = TypeVar("M", bound=BaseModel)

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- when emails may arrive (issue 20) -------------------------------------------------

#: The short day names a schedule may use, beside the full ones.
DAY_ABBREVIATIONS = {day[:3]: day for day in WEEKDAYS}
_WINDOW = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def weekday_name(value: Any) -> Any:
    """'Mon', 'monday' or 'MONDAY' as 'monday'; anything else unchanged, for the validator."""
    if not isinstance(value, str):
        return value
    lowered = value.strip().lower()
    return DAY_ABBREVIATIONS.get(lowered, lowered)


def _yaml_time(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return time(value // 60 % 24, value % 60)  # YAML 1.1 reads 06:30 unquoted as 390
    return value


class Schedule(_Strict):
    """When a sequence's emails may arrive, in each subscriber's own timezone.

    `window` ("06:00-20:00") is the part of the day an email may go out in, and `days` the
    weekdays it may go out on; without them, emails are planned outside the quiet hours
    (21:00-06:00) on any day, and a first email sent `immediately` goes at any hour, as
    before. `first_email: at-once` (the default) sends a first step marked `immediately`
    at once when the join falls inside the window, else when the window next opens;
    `first_email: send-time` waits for the next send time instead.
    """

    send_time: time = time(6, 30)
    window: str | None = None
    days: tuple[Literal[WEEKDAYS], ...] = WEEKDAYS  # type: ignore[valid-type]
    weekday: Literal[WEEKDAYS] | None = None  # type: ignore[valid-type]
    first_pinned_gap_days: int = Field(default=5, strict=True, ge=1, le=7)
    #: At most this many emails a local day to one person, counting every sequence they
    #: are in: one of this sequence's emails past that waits for the next day's slot.
    max_per_day: int | None = Field(default=None, strict=True, ge=1, le=10)
    first_email: Literal["at-once", "send-time"] = "at-once"

    @field_validator("send_time", mode="before")
    @classmethod
    def _parse_time(cls, value: Any) -> Any:
        return _yaml_time(value)

    @field_validator("send_time")
    @classmethod
    def _local(cls, value: time) -> time:
        if value.tzinfo is not None:  # "06:30+10:00" parses, but cannot be compared below
            raise ValueError("must be a local time without a UTC offset, like \"06:30\": "
                             "it is read in each subscriber's own timezone")
        return value

    @field_validator("window", mode="before")
    @classmethod
    def _window_shape(cls, value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, str):
            raise ValueError("must be a quoted range of local times, like \"06:00-20:00\"")
        match = _WINDOW.match(value)
        if not match:
            raise ValueError("must be a range of local times, like \"06:00-20:00\"")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2):
            raise ValueError("must be a range of real clock times, like \"06:00-20:00\"")
        if (h1, m1) >= (h2, m2):
            raise ValueError("must open before it closes on the same day, like \"06:00-20:00\" "
                             "(a window cannot run past midnight)")
        return f"{h1:02d}:{m1:02d}-{h2:02d}:{m2:02d}"

    @field_validator("days", mode="before")
    @classmethod
    def _day_names(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return tuple(weekday_name(v) for v in value)
        return value

    @field_validator("days")
    @classmethod
    def _some_days(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("must name at least one day, like [mon, wed, fri]")
        if len(set(value)) != len(value):
            raise ValueError("names a day twice; list each day once")
        return tuple(d for d in WEEKDAYS if d in value)

    @field_validator("weekday", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return weekday_name(value)

    @model_validator(mode="after")
    def _fits(self) -> Schedule:
        opens, closes = self.opens, self.closes
        if self.window is None and not (opens <= self.send_time < QUIET_START):
            raise ValueError("schedule.send_time: must be between 06:00 and 20:59 local time, "
                             "because nothing is sent at night")
        if self.window is not None and not (opens <= self.send_time < closes):
            raise ValueError(f"schedule.send_time: must be inside the window {self.window}, "
                             "where emails may go out")
        if self.weekday is not None and self.weekday not in self.days:
            raise ValueError(f"schedule.weekday: {self.weekday} is not one of the days emails "
                             "may go out on; add it to 'days' or pin another weekday")
        return self

    @property
    def opens(self) -> time:
        """When the local send window opens (06:00 unless `window` says otherwise)."""
        if self.window is None:
            return QUIET_END
        return time.fromisoformat(self.window.split("-")[0])

    @property
    def closes(self) -> time:
        """When the local send window closes (21:00, unless `window` says otherwise);
        time.max stands for 24:00."""
        if self.window is None:
            return QUIET_START
        end = self.window.split("-")[1]
        return time.max if end == "24:00" else time.fromisoformat(end)

    @property
    def bounded(self) -> bool:
        """Whether the coach set a window or days: then an `immediately` email keeps to them."""
        return self.window is not None or self.days != WEEKDAYS


def _days(value: str) -> int:
    """Whole days in a wait written as 'N days' or 'N weeks' (0 if it is not one)."""
    match = _SEND_AFTER.match(value)
    if not match:
        return 0
    amount = int(match.group(1))
    return amount * 7 if match.group(2).startswith("week") else amount


# --- tags: set by checkpoint answers, branching a step, ending a sequence (issue 20) --------

TAG = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
#: A tag a step branches on is part of the branch email's variant ("main/struggling"),
#: which the ledger keeps in 40 characters with "+reminder".
BRANCH_TAG_LENGTH = 24


def _tag_like(value: str) -> str:
    if not isinstance(value, str) or not TAG.match(value):
        raise ValueError("must be a tag of lower-case letters, digits and hyphens (at most 40), "
                         "like struggling or clinician-referral")
    return value


TagName = Annotated[str, AfterValidator(_tag_like)]


class TagAction(_Strict):
    """`- tag: struggling`: set this tag on the subscriber."""

    tag: TagName


class AnswerActions(_Strict):
    """What a checkpoint answer does beside moving the program: the tags it sets.
    `on_answer: {not_yet: [tag: struggling]}` (`notyet` and `not-yet` read the same)."""

    passed: list[TagAction] = []
    not_yet: list[TagAction] = []

    @model_validator(mode="before")
    @classmethod
    def _answer_names(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {("not_yet" if str(k).replace("-", "_") in ("notyet", "not_yet") else k): v
                    for k, v in value.items()}
        return value

    def tags_for(self, answer: str) -> list[str]:
        actions = self.passed if answer == "passed" else self.not_yet if answer == "not-yet" else []
        return [action.tag for action in actions]


class When(_Strict):
    """The condition of a branch: the subscriber has this tag."""

    tag: TagName

    @field_validator("tag")
    @classmethod
    def _short(cls, value: str) -> str:
        if len(value) > BRANCH_TAG_LENGTH:
            raise ValueError(f"must be at most {BRANCH_TAG_LENGTH} characters for a branch, "
                             "since the email's variant carries it")
        return value


class Branch(_Strict):
    """Another version of a step's main email, sent instead of it to subscribers with a tag.
    It asks the same checkpoint: a branch changes what an email says, never where the
    program goes (a gate still needs its "passed")."""

    when: When
    subject: str = Field(min_length=1)
    preheader: str = Field(min_length=1)
    template: str


class Checkpoint(_Strict):
    """The question an email asks, answered in one tap: "passed" or "not yet".

    `no_answer` says what silence means for this checkpoint (the sequence's `no_answer`
    when left out); `gate: true` marks a question that decides whether someone moves on to
    something riskier (running, say), which lint insists is never passed by silence.
    `remind_after` sends one short reminder of the question if it is still unanswered then.
    """

    question: str = Field(min_length=5)
    passing: str = Field(min_length=5)
    no_answer: Literal["advance", "repeat", "hold"] | None = None
    gate: bool = Field(default=False, strict=True)
    remind_after: str | None = None
    #: The tags an answer sets (issue 20).
    on_answer: AnswerActions = AnswerActions()

    @field_validator("remind_after")
    @classmethod
    def _remind_after_shape(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not _SEND_AFTER.match(value) or _days(value) < 1:
            raise ValueError("must be a wait such as '5 days' (whole days, at least one)")
        return value.strip()

    @property
    def remind_days(self) -> int | None:
        return _days(self.remind_after) if self.remind_after else None


class Variant(_Strict):
    subject: str = Field(min_length=1)
    preheader: str = Field(min_length=1)
    template: str


# --- A/B tests and the nudge holdout (issue 20, part A; drip/experiments) ----------------

#: What a split test counts per variant, per enrollment that got the email.
TestMetric = Literal["checkpoint_answered", "clicked", "purchased"]


class SplitVariant(_Strict):
    """One version of a step's main email in a split test: only the fields written here
    differ from the step's own (none: the step's own email); the program (step, week,
    checkpoint) never does."""

    key: Annotated[str, _key_like("b")]
    #: Relative to the other variants' weights; left out on every variant, the split is even.
    weight: float | None = Field(default=None, gt=0, le=1000)
    subject: str | None = Field(default=None, min_length=1)
    preheader: str | None = Field(default=None, min_length=1)
    template: str | None = None

    @property
    def changes(self) -> bool:
        """Whether it differs from the step's own email (a variant that does not is the
        step's own email: a control)."""
        return not (self.subject is None and self.preheader is None and self.template is None)


class SplitTest(_Strict):
    """`test:` on a step: variants of its subject, preheader or template, one per
    enrollment (drip.experiments.assignment), judged by drip.experiments.statistics."""

    name: Key
    variants: list[SplitVariant] = Field(min_length=2, max_length=6)
    metric: TestMetric
    #: No variant is called the leader before each has this many enrollments.
    min_per_variant: int = Field(default=200, strict=True, ge=20, le=10_000_000)
    #: `auto`: once a variant leads, everyone after gets it (recorded by `drip stats --tests`).
    winner: Literal["auto"] | None = None

    @model_validator(mode="after")
    def _variants_consistent(self) -> SplitTest:
        keys = [v.key for v in self.variants]
        for index, key in enumerate(keys):
            if key in keys[:index]:
                raise ValueError(f"the variant key '{key}' is used twice; give each "
                                 "variant its own key")
        if not any(v.changes for v in self.variants):
            raise ValueError("every variant is the step's own email; give one its own "
                             "subject, preheader or template")
        weighted = [v.weight is not None for v in self.variants]
        if any(weighted) and not all(weighted):
            raise ValueError("give every variant a weight, or none (an even split)")
        return self

    @property
    def weights(self) -> tuple[float, ...]:
        return tuple(v.weight if v.weight is not None else 1.0 for v in self.variants)

    def variant(self, key: str) -> SplitVariant | None:
        return next((v for v in self.variants if v.key == key), None)


# --- end of A/B tests ----------------------------------------------------------------------


class Step(_Strict):
    key: StepKey
    week: int = Field(strict=True, ge=1, le=520)
    send_after: str
    subject: str = Field(min_length=1)
    preheader: str = Field(min_length=1)
    template: str
    nudge: str | None = None
    checkpoint: Checkpoint | None = None
    repeat: Variant | None = None
    #: The email sent instead of moving on while a `no_answer: hold` checkpoint waits for
    #: an explicit "passed": the same week's plan, the question again, and why we wait.
    waiting: Variant | None = None
    #: Versions of the main email for subscribers with a tag, first match wins (issue 20).
    branches: list[Branch] = []
    #: A split test of this step's main email (drip.experiments).
    test: SplitTest | None = None

    @field_validator("send_after")
    @classmethod
    def _send_after_shape(cls, value: str) -> str:
        if value.strip() != "immediately" and not _SEND_AFTER.match(value):
            raise ValueError("must be 'immediately' or a wait such as '1 week' or '3 days'")
        return value.strip()

    @property
    def immediate(self) -> bool:
        return self.send_after == "immediately"

    @property
    def wait_days(self) -> int:
        return _days(self.send_after)


class NudgeRules(_Strict):
    """How the one nudge per email is chosen."""

    cooldown_weeks: int = Field(default=3, strict=True, ge=0, le=52)
    after_not_yet: str | None = None  # the offer that comes first after repeated "not yet"
    #: At most this many emails of one enrollment carry an offer (None: no cap).
    max_per_enrollment: int | None = Field(default=None, strict=True, ge=0, le=100)
    #: The share of enrollments that never get an offer (stable per enrollment), so that
    #: `drip stats` can show what the nudges add to purchases (drip.experiments).
    holdout: float = Field(default=0.0, ge=0.0, le=0.5)


class Goal(_Strict):
    """An exit: buying `purchased`, or having the tag `tag`, stops the nudges, or the
    whole sequence."""

    purchased: str | None = None
    tag: TagName | None = None
    stops: Literal["nudges", "sequence"]

    @model_validator(mode="after")
    def _one_condition(self) -> Goal:
        if (self.purchased is None) == (self.tag is None):
            raise ValueError("a goal needs either 'purchased: PRODUCT' or 'tag: TAG', "
                             "not both or neither")
        return self


class RestartAfter(_Strict):
    # days since the last enrollment finished
    restart_after: int = Field(strict=True, ge=1, le=3650)


class Sequence(_Strict):
    key: Key
    name: str = Field(min_length=1)
    description: str = ""
    schedule: Schedule = Schedule()
    greeting_fallback: str = "there"
    disclaimer: str = ""
    steps: list[Step] = Field(min_length=1)
    graduated: Variant | None = None
    see_a_clinician: Variant | None = None
    repeat_limit: int = Field(default=2, strict=True, ge=1, le=10)
    no_answer: Literal["advance", "repeat", "hold"] = "advance"
    #: Waiting (or silent repeat) emails in a row before a silent runner's enrollment is
    #: paused for the coach.
    hold_limit: int = Field(default=2, strict=True, ge=1, le=10)
    reminder: str = ""
    #: The short email that asks an unanswered checkpoint again (`remind_after`).
    checkpoint_reminder: Variant | None = None
    nudges: NudgeRules = NudgeRules()
    goals: list[Goal] = []
    re_entry: Literal["once", "restart"] | RestartAfter = "once"
    #: Tags set by hand (`drip tag add`, an import's tags column, the API) that goals and
    #: branches may use: lint reports a tag nothing sets (issue 20).
    manual_tags: list[TagName] = []
    content_hash: str = ""

    @model_validator(mode="after")
    def _steps_consistent(self) -> Sequence:
        seen: set[str] = set()
        tests: set[str] = set()
        for index, step in enumerate(self.steps):
            if step.key in seen:
                raise ValueError(
                    f"steps.{index}.key: '{step.key}' is used twice; keys must be unique"
                )
            seen.add(step.key)
            if index == 0 and not step.immediate and step.wait_days == 0:
                raise ValueError("steps.0.send_after: the first step needs a wait or 'immediately'")
            if index > 0 and not step.immediate and step.wait_days == 0:
                raise ValueError(
                    f"steps.{index}.send_after: a wait of 0 sends this email in the same "
                    "slot as the one before it, two at once"
                )
            if index > 0 and step.immediate:
                raise ValueError(
                    f"steps.{index}.send_after: only the first step can go 'immediately'; "
                    "write a wait such as '1 week'"
                )
            _check_split_test(index, step, tests)
            checkpoint = step.checkpoint
            if checkpoint is not None and checkpoint.remind_days is not None:
                pace = (self.steps[index + 1] if index + 1 < len(self.steps) else step).wait_days
                if pace and checkpoint.remind_days >= pace:
                    raise ValueError(
                        f"steps.{index}.checkpoint.remind_after: a reminder after "
                        f"{checkpoint.remind_days} days would come with or after the next "
                        f"email, {pace} days later; make it shorter than that"
                    )
        return self

    def no_answer_for(self, step: Step) -> Literal["advance", "repeat", "hold"]:
        """What silence means at `step`'s checkpoint: its own rule, else the sequence's."""
        if step.checkpoint is not None and step.checkpoint.no_answer is not None:
            return step.checkpoint.no_answer
        return self.no_answer

    def previous_step(self, key: str) -> Step | None:
        index = self.step_keys.index(key)
        return self.steps[index - 1] if index > 0 else None

    def step(self, key: str) -> Step:
        return self._steps_by_key[key]

    def next_step(self, key: str) -> Step | None:
        index = self.step_keys.index(key)
        return self.steps[index + 1] if index + 1 < len(self.steps) else None

    @cached_property
    def step_keys(self) -> tuple[str, ...]:
        """The steps' keys in order (the model is frozen, so this is computed once)."""
        return tuple(s.key for s in self.steps)

    @cached_property
    def _steps_by_key(self) -> dict[str, Step]:
        return {s.key: s for s in self.steps}


def _check_split_test(index: int, step: Step, names: set[str]) -> None:
    """A step's split test must be one of its kind and measurable on this step."""
    test = step.test
    if test is None:
        return
    if test.name in names:
        raise ValueError(f"steps.{index}.test.name: '{test.name}' is used by two steps; "
                         "give each test its own name")
    names.add(test.name)
    if test.metric == "checkpoint_answered" and step.checkpoint is None:
        raise ValueError(f"steps.{index}.test.metric: this step has no checkpoint to "
                         "answer; use clicked or purchased, or add a checkpoint")


class Offer(_Strict):
    key: Key
    name: str = Field(min_length=1)
    url: str
    pitch: str = Field(min_length=1)
    weeks: list[Annotated[int, Field(strict=True)]] = []

    @field_validator("url")
    @classmethod
    def _https(cls, value: str) -> str:
        if not value.startswith("https://"):
            raise ValueError("must be an absolute https:// URL")
        return value


class Offers(_Strict):
    offers: list[Offer] = []

    def get(self, key: str) -> Offer | None:
        return next((o for o in self.offers if o.key == key), None)


class Exercise(_Strict):
    """One exercise as every week that uses it describes it: written once, so a cue is
    fixed in one place. Templates print it with {{ exercise("key", "3 sets of 8") }}."""

    key: Key
    name: str = Field(min_length=1)
    how: str = ""          # how to set up and do it, one or two sentences
    cues: list[Annotated[str, Field(min_length=1)]] = []
    dose_notes: str = ""   # what holds for every dose (effort, tempo), printed after the cues
    demo: str | None = None

    @field_validator("demo")
    @classmethod
    def _https_demo(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("https://"):
            raise ValueError("must be an absolute https:// URL")
        return value


class Exercises(_Strict):
    exercises: list[Exercise] = []

    def get(self, key: str) -> Exercise | None:
        return self._by_key.get(key)

    @cached_property
    def _by_key(self) -> dict[str, Exercise]:
        return {e.key: e for e in self.exercises}


@dataclass(frozen=True)
class Library:
    """All sequences and offers of one installation, loaded and validated together."""

    sequences: dict[str, Sequence]
    offers: Offers
    exercises: Exercises = field(default_factory=Exercises)

    def sequence(self, key: str) -> Sequence:
        try:
            return self.sequences[key]
        except KeyError:
            known = ", ".join(sorted(self.sequences)) or "none"
            raise SequenceError(
                f"There is no sequence '{key}'.",
                fix=f"use one of: {known}, or add sequences/{key}.yaml",
            ) from None


# --- loading ---------------------------------------------------------------------------


def load_library(sequences_dir: Path) -> Library:
    """Load every sequences/*.yaml and sequences/offers.yaml, or raise the first mistake."""
    if not sequences_dir.is_dir():
        raise SequenceError(
            f"The sequences folder {sequences_dir} does not exist.",
            fix="create it, or point DRIP_SEQUENCES_DIR at your sequences folder",
        )
    offers_path = sequences_dir / "offers.yaml"
    offers = load_offers(offers_path) if offers_path.exists() else Offers()
    exercises_path = sequences_dir / EXERCISES_FILE
    exercises = load_exercises(exercises_path) if exercises_path.exists() else Exercises()
    sequences: dict[str, Sequence] = {}
    for path in sorted(sequences_dir.glob("*.y*ml")):
        if path.name in NOT_SEQUENCES:
            continue
        sequence = load_sequence(path)
        if sequence.key in sequences:
            raise SequenceError(
                f"The sequence key '{sequence.key}' is used by two files.",
                file=str(path),
                field="key",
                fix="give each sequence file its own key",
            )
        _check_offer_references(sequence, offers, path)
        sequences[sequence.key] = sequence
    return Library(sequences=sequences, offers=offers, exercises=exercises)


def load_sequence(path: Path) -> Sequence:
    sequence, problems = check_sequence_file(path)
    if problems or sequence is None:
        raise problems[0]
    return sequence


def load_offers(path: Path) -> Offers:
    offers, problems = check_offers_file(path)
    if problems or offers is None:
        raise problems[0]
    return offers


def load_exercises(path: Path) -> Exercises:
    exercises, problems = check_exercises_file(path)
    if problems or exercises is None:
        raise problems[0]
    return exercises


def check_sequence_file(path: Path) -> tuple[Sequence | None, list[SequenceError]]:
    """The sequence in `path`, or every mistake found in it (as many as validation finds)."""
    try:
        data, root = _read_yaml(path)
    except SequenceError as exc:
        return None, [exc]
    if not isinstance(data, dict):
        return None, [SequenceError(
            "A sequence file must be a mapping with key, name and steps.",
            file=str(path),
            line=1,
            fix="start the file with 'key: my-sequence'",
        )]
    data = dict(data)
    data["content_hash"] = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    try:
        sequence = Sequence.model_validate(data)
    except ValidationError as exc:
        return None, _problems(exc, path, root, Sequence)
    if sequence.key != path.stem:
        return None, [SequenceError(
            f"The key '{sequence.key}' does not match the file name '{path.name}'.",
            file=str(path),
            line=_line_of(root, ("key",)),
            field="key",
            fix=f"rename the file to {sequence.key}.yaml or set key: {path.stem}",
        )]
    return sequence, []


def check_offers_file(path: Path) -> tuple[Offers | None, list[SequenceError]]:
    """The offers in `path`, or every mistake found in them."""
    try:
        data, root = _read_yaml(path)
        offers = Offers.model_validate(data or {})
    except SequenceError as exc:
        return None, [exc]
    except ValidationError as exc:
        return None, _problems(exc, path, root, Offers)
    seen: set[str] = set()
    problems: list[SequenceError] = []
    for index, offer in enumerate(offers.offers):
        if offer.key in seen:
            problems.append(SequenceError(
                f"The offer key '{offer.key}' is used twice.",
                file=str(path),
                line=_line_of(root, ("offers", index, "key")),
                field=f"offers.{index}.key",
                fix="give each offer its own key",
            ))
        seen.add(offer.key)
    return (None if problems else offers), problems


def check_exercises_file(path: Path) -> tuple[Exercises | None, list[SequenceError]]:
    """The exercises in `path`, or every mistake found in them."""
    try:
        data, root = _read_yaml(path)
        exercises = Exercises.model_validate(data or {})
    except SequenceError as exc:
        return None, [exc]
    except ValidationError as exc:
        return None, _problems(exc, path, root, Exercises)
    seen: set[str] = set()
    problems: list[SequenceError] = []
    for index, exercise in enumerate(exercises.exercises):
        if exercise.key in seen:
            problems.append(SequenceError(
                f"The exercise key '{exercise.key}' is used twice.",
                file=str(path),
                line=_line_of(root, ("exercises", index, "key")),
                field=f"exercises.{index}.key",
                fix="give each exercise its own key",
            ))
        seen.add(exercise.key)
    return (None if problems else exercises), problems


def line_of(path: Path, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line of a field (such as ("steps", 2, "template")) in a YAML file."""
    try:
        _, root = _read_yaml(path)
    except SequenceError:
        return None
    return _line_of(root, loc)


def _check_offer_references(sequence: Sequence, offers: Offers, path: Path) -> None:
    references: list[tuple[str, tuple[Any, ...]]] = [
        (step.nudge, ("steps", index, "nudge"))
        for index, step in enumerate(sequence.steps) if step.nudge
    ]
    if sequence.nudges.after_not_yet:
        references.append((sequence.nudges.after_not_yet, ("nudges", "after_not_yet")))
    for key, loc in references:
        if offers.get(key) is None:
            known = ", ".join(o.key for o in offers.offers) or "none defined"
            _, root = _read_yaml(path)
            raise SequenceError(
                f"'{key}' is not an offer that offers.yaml defines.",
                file=str(path),
                line=_line_of(root, loc),
                field=".".join(str(p) for p in loc),
                fix=f"use one of: {known}",
            )


def _read_yaml(path: Path) -> tuple[Any, yaml.Node | None]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SequenceError(
            "The file is not UTF-8 text.", file=str(path), fix="save it as UTF-8"
        ) from None
    except OSError as exc:
        raise SequenceError(f"Cannot read the file: {exc.strerror}.", file=str(path)) from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        # reported where the broken construct starts, not where PyYAML gave up
        mistake = yaml_mistake(text, exc)
        raise SequenceError(mistake.problem, file=str(path), line=mistake.line,
                            fix=mistake.fix) from None
    duplicate = _first_duplicate_key(root)
    if duplicate is not None:
        loc, line, first = duplicate
        raise SequenceError(
            f"'{loc[-1]}' is written twice in the same block (first on line {first}); YAML "
            "would silently keep only the last one.",
            file=str(path),
            line=line,
            field=".".join(str(p) for p in loc),
            fix="delete one of the two, or indent it under the step it belongs to",
        )
    return data, root


def _first_duplicate_key(root: yaml.Node | None) -> tuple[tuple[Any, ...], int, int] | None:
    """(location, line, line of its first use) of the first key repeated in a mapping."""
    pending: list[tuple[yaml.Node, tuple[Any, ...]]] = [(root, ())] if root is not None else []
    while pending:
        node, loc = pending.pop(0)
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                    line = key.start_mark.line + 1
                    if key.value in seen:
                        return (*loc, key.value), line, seen[key.value]
                    seen[key.value] = line
                    pending.append((value, (*loc, key.value)))
        elif isinstance(node, yaml.SequenceNode):
            pending.extend((item, (*loc, index)) for index, item in enumerate(node.value))
    return None


def _validate(model: type[M], data: Any, path: Path, root: yaml.Node | None) -> M:
    """`data` as `model`, or the first mistake as a SequenceError with its line and fix."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _problems(exc, path, root, model)[0] from None


def _problems(exc: ValidationError, path: Path, root: yaml.Node | None,
              model: type[BaseModel]) -> list[SequenceError]:
    located: list[tuple[tuple[Any, ...], str, str]] = []
    for error in exc.errors():
        loc: tuple[Any, ...] = tuple(error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        # model-level validators report their own location inside the message
        # (a nested model's validator, such as the schedule's, names its own path too)
        if ":" in message and message.split(":", 1)[0].count(".") >= 1 and (
                not loc or message.split(".", 1)[0] == str(loc[-1])):
            dotted, message = message.split(":", 1)
            inner = tuple(int(p) if p.isdigit() else p for p in dotted.split("."))
            loc = (*loc[:-1], *inner) if loc else inner
            message = message.strip()
        # a union (re_entry) reports each alternative; the first says enough
        loc = tuple(p for p in loc if not (isinstance(p, str) and p.startswith(("literal[",
                                                                                 "RestartAfter"))))
        located.append((loc, error["type"], message))
    # 'subjet:' is one mistake, not an unknown field and a missing 'subject'
    misspelt = misspelt_fields(model, located)
    meant = {(*loc[:-1], name) for loc, name in misspelt.items()}
    problems: list[SequenceError] = []
    for loc, kind, message in located:
        if kind == "missing" and loc in meant:
            continue
        text, fix = _explain(kind, message, loc), _fix_for(kind, loc)
        if kind == "extra_forbidden":
            text, fix = unknown_field(model, loc, misspelt.get(loc))
        field = ".".join(str(p) for p in loc) or None
        problem = SequenceError(text, file=str(path), line=_line_of(root, loc), field=field,
                                fix=fix)
        if all(p.field != problem.field for p in problems):
            problems.append(problem)
    return problems


def _explain(kind: str, message: str, loc: tuple[Any, ...]) -> str:
    if kind == "extra_forbidden":
        return f"'{loc[-1]}' is not a known field."
    if kind == "missing":
        return f"'{loc[-1]}' is required but missing."
    return message[0].upper() + message[1:] + ("" if message.endswith(".") else ".")


def _fix_for(kind: str, loc: tuple[Any, ...]) -> str:
    if kind == "extra_forbidden":
        return "remove it, or check its spelling against docs/writing-sequences.md"
    if kind == "missing":
        return f"add '{loc[-1]}:' with a value"
    if kind == "string_too_short" and loc and loc[-1] in ("subject", "preheader"):
        return f"write a {loc[-1]}: the line people see in their inbox before they open it"
    if loc and loc[-1] == "url":
        return "write the full address, starting with https://"
    if loc and loc[-1] == "holdout":
        return "write the share of enrollments that get no offers, such as 0.1 for 10%"
    if loc and loc[-1] == "weight":
        return "write a positive number; weights are relative, such as 50 and 50"
    if loc and loc[-1] == "send_time":
        return "write it quoted, like send_time: \"06:30\""
    if kind.startswith("int_") or kind in ("greater_than_equal", "less_than_equal"):
        return "write a whole number in the range the message gives"
    if kind == "literal_error":
        return "use one of the values the message lists, spelled exactly so"
    if kind == "string_type":
        return "write text; put it in quotes if it looks like a number, a date or yes/no"
    if kind == "too_short" and loc and loc[-1] == "steps":
        return "add at least one step"
    if kind == "list_type":
        return "write a list: one '- item' line per entry under it, or [a, b]"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return "indent the fields that belong under it, one 'name: value' per line"
    if loc and loc[-1] == "key":
        return "give each one its own key"
    if loc and loc[-1] == "send_after":
        return "write 'immediately' for the first step, or a wait such as '1 week' or '3 days'"
    return "see the table of fields in docs/writing-sequences.md"


def _line_of(root: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line of a field in the YAML tree, or of its closest existing parent."""
    node = root
    line = (node.start_mark.line + 1) if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            found = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
            if found is None:
                key_node = next((k for k, _ in node.value if k.value == part), None)
                return (key_node.start_mark.line + 1) if key_node is not None else line
            key_line = next(k for k, v in node.value if v is found).start_mark.line + 1
            node, line = found, key_line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return line
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line
