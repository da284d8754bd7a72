"""Importing people from a CSV file (a shop's order export, say) into a sequence.

Every row is checked before anything is written; a file with a bad row changes
nothing unless the operator says to skip bad rows. Re-running an import changes
nothing for people already enrolled, so it is safe to run twice. People the file says
left (unsubscribed, bounced, suppressed) are recorded as such and never enrolled.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from drip.addresses import clean_name, normalise_email, validate_timezone
from drip.clock import parse_instant
from drip.errors import InvalidInput
from drip.import_formats import TOOL_NAMES, ColumnMap, column_map
from drip.planner import first_email_of_import
from drip.sequence import Library
from drip.store import ImportPerson, ImportResult, Store
from drip.tags import parse_tags

Progress = Callable[[int], None]

#: What a file may say about a person, onto drip's four states. `drip export subscribers`
#: writes the first word of each; the rest are other tools' words for the same thing.
STATES = {
    "active": "active", "subscribed": "active",
    "paused": "paused",
    "unsubscribed": "unsubscribed", "cancelled": "unsubscribed", "canceled": "unsubscribed",
    "suppressed": "suppressed", "bounced": "suppressed", "cleaned": "suppressed",
    "complained": "suppressed",
    "cold": "active",  # Kit: subscribed, but has not opened in a while
    "inactive": "unconfirmed", "unconfirmed": "unconfirmed", "pending": "unconfirmed",
}
LEFT = ("unsubscribed", "suppressed")
#: A consent column (Shopify's Accepts Email Marketing) must say yes, or the row is refused.
CONSENTED = ("yes", "true", "1", "y", "subscribed", "opted_in")


@dataclass(frozen=True)
class ImportRow:
    line: int
    email: str
    name: str
    timezone: str
    joined_at: datetime | None
    source: str
    state: str = "active"  # one of STATES' values
    left_at: datetime | None = None  # when they unsubscribed or were suppressed
    reason: str | None = None  # why they were suppressed
    sequences: tuple[str, ...] | None = None  # the sequences a drip export says they were in
    evidence: tuple[tuple[str, str], ...] = ()  # the export's opt-in and confirm times and IPs
    tags: tuple[str, ...] = ()  # a tags column ("a, b"): set on the person (drip.tags)


@dataclass(frozen=True)
class Problem:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass
class ParsedFile:
    """The rows of a CSV file that can be imported, and what is wrong with the rest."""

    rows: list[ImportRow] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    merged: list[Problem] = field(default_factory=list)  # duplicates folded into one row
    ignored_columns: list[str] = field(default_factory=list)
    lines: int = 0


class InvalidFile(InvalidInput):
    """The CSV file has invalid rows; nothing was imported."""

    def __init__(self, problems: list[Problem], shown: int = 20) -> None:
        self.problems = problems
        listed = "; ".join(str(p) for p in problems[:shown])
        more = f"; and {len(problems) - shown} more" if len(problems) > shown else ""
        super().__init__(f"{len(problems)} invalid rows, so nothing was imported "
                         f"(fix them, or pass --skip-invalid): {listed}{more}.")


def parse_csv(data: bytes, *, columns: ColumnMap | None = None,
              progress: Progress | None = None) -> ParsedFile:
    """Check every row of a CSV file whose header names the columns email, name, timezone,
    joined_at and source (only email is required; other columns are ignored), or the
    columns of another tool's export (`columns`, from drip.import_formats.column_map)."""
    columns = columns or column_map()
    parsed = ParsedFile()
    # Physical lines keep their endings, so csv.reader reads a quoted field that holds a
    # line break (a Shopify note or address) as one field of one row.
    raw_lines = data.splitlines(keepends=True)
    text_lines: list[str] = []
    for number, raw in enumerate(raw_lines, start=1):
        try:
            text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            if number == 1:  # without a header no row can be read: say why, not "no email"
                raise InvalidInput("The header row (line 1) is not UTF-8; save the file as "
                                   "UTF-8 (in Excel: CSV UTF-8) and import it again.") from None
            parsed.problems.append(Problem(number, f"not UTF-8 (byte {exc.start + 1}); save "
                                           "the file as UTF-8"))
            text = "\n"
        text_lines.append(text)
    parsed.lines = len(text_lines)
    reader = csv.reader(text_lines)
    header = _header(next(reader, None), parsed, columns)
    first_seen: dict[str, int] = {}
    ended = reader.line_num  # the physical line the previous row ended on
    counted = ended  # lines reported to `progress`: the header is not one of them
    for fields in reader:
        line, ended = ended + 1, reader.line_num  # a row is named by the line it starts on
        if progress is not None and line // 5000 != ended // 5000:
            progress(ended - counted)  # the lines after the header read so far
            counted = ended
        if not fields or not any(f.strip() for f in fields):
            continue
        if len(fields) != len(header):
            parsed.problems.append(Problem(line, f"{len(fields)} columns, but the header has "
                                           f"{len(header)}"))
            continue
        row = _row(line, {h: f for h, f in zip(header, fields, strict=True) if h},
                   parsed, columns)
        if row is None:
            continue
        earlier = first_seen.get(row.email)
        if earlier is None:
            first_seen[row.email] = len(parsed.rows)
            parsed.rows.append(row)
            continue
        merged, clash = _merge(parsed.rows[earlier], row)
        if clash:
            parsed.problems.append(Problem(line, clash))
        else:
            parsed.rows[earlier] = merged
            parsed.merged.append(Problem(line, f"{row.email} repeats line "
                                         f"{parsed.rows[earlier].line}; merged"))
    if progress is not None:  # in all, the lines after the header: never the header row
        progress(parsed.lines - counted)
    parsed.rows = [row if row.timezone else replace(row, timezone="UTC") for row in parsed.rows]
    parsed.problems.sort(key=lambda p: p.line)
    return parsed


def _header(fields: list[str] | None, parsed: ParsedFile, columns: ColumnMap) -> list[str]:
    """The field each column holds, in order ('' for a column that is ignored)."""
    example = ("email,name,timezone,joined_at,source" if columns.tool == "csv"
               else ",".join(c for c in list(columns.columns)[:3]))
    if fields is None:
        raise InvalidInput(f"The file is empty; it needs a header row such as {example}.")
    header = [f.strip().lower() for f in fields]
    wanted = columns.email_column
    if wanted not in header:
        for separator, called in ((";", "semicolons"), ("\t", "tabs")):
            if any(wanted in [c.strip() for c in h.split(separator)] for h in header):
                raise InvalidInput(f"The header row is separated by {called}, not commas; "
                                   "save the file as comma-separated CSV, with a header "
                                   f"such as {example}.")
        if columns.tool == "csv" and wanted == "email":
            raise InvalidInput("The header row has no 'email' column; name the columns on "
                               "the first line, such as email,name,timezone,joined_at,"
                               "source.")
        raise InvalidInput(f"The header row has no '{wanted}' column, which is where "
                           f"{TOOL_NAMES.get(columns.tool, columns.tool)}'s export has the "
                           "address; pass the --from of the tool that wrote the file, or "
                           "--map 'YOUR COLUMN=email'.")
    for column in set(header):  # two columns of one name: which one would count is a guess
        where = [str(n) for n, h in enumerate(header, start=1) if h == column]
        if column in columns.columns and len(where) > 1:
            raise InvalidInput(f"The header row has the column '{column}' more than once "
                               f"(columns {' and '.join(where)}); rename or remove all "
                               "but one.")
    parsed.ignored_columns = [h for h in header if h not in columns.columns]
    return [columns.columns.get(h, "") for h in header]


def _row(line: int, values: dict[str, str], parsed: ParsedFile,
         columns: ColumnMap) -> ImportRow | None:
    try:
        email = normalise_email(values["email"])
        given = values.get("timezone", "").strip()
        # blank stays blank until duplicates are merged: UTC written out is a timezone
        timezone = validate_timezone(given) if given else ""
        joined_at = _instant(values.get("joined_at", ""))
        unsubscribed_at = _instant(values.get("unsubscribed_at", ""))
        suppressed_at = _instant(values.get("suppressed_at", ""))
        optin_at = _instant(values.get("optin_at", ""))
        confirmed_at = _instant(values.get("confirmed_at", ""))
        tags = tuple(parse_tags(values.get("tags", "")))
    except InvalidInput as exc:
        parsed.problems.append(Problem(line, str(exc).rstrip(".")))
        return None
    said = values.get("state", "").strip().lower()
    if said and said not in STATES:
        parsed.problems.append(Problem(line, f"the state '{said}' is not one of "
                                       f"{', '.join(STATES)}"))
        return None
    state = STATES[said] if said else "active"
    # A time of leaving counts even where the state column is blank or says otherwise.
    if state not in LEFT and (suppressed_at or unsubscribed_at):
        state = "suppressed" if suppressed_at else "unsubscribed"
    consent = values.get("consent")
    if state not in LEFT and consent is not None and consent.strip().lower() not in CONSENTED:
        column = next(c for c, f in columns.columns.items() if f == "consent")
        parsed.problems.append(Problem(line, f"{email} has no marketing consent ('{column}' "
                                       f"is '{consent.strip()}'); only people who agreed to "
                                       "marketing email can be imported"))
        return None
    if state == "unconfirmed":
        parsed.problems.append(Problem(line, f"{email} never confirmed their subscription "
                                       f"(state '{said}'), so there is no consent to email "
                                       "them"))
        return None
    left_at = suppressed_at if state == "suppressed" else (
        unsubscribed_at if state == "unsubscribed" else None)
    reason = values.get("suppressed_reason", "").strip() or None
    if state == "suppressed" and reason is None:
        reason = f"{said or 'suppressed'} before the import"
    listed = values.get("sequences")
    sequences = tuple(k.strip() for k in listed.split(";") if k.strip()) if listed is not None \
        else None
    name = clean_name(values.get("name", "") or " ".join(
        values.get(part, "") for part in ("first_name", "last_name")), limit=None)
    if len(name) > 200:
        parsed.problems.append(Problem(line, "the name is longer than 200 characters"))
        return None
    evidence = tuple((k, v) for k, v in (
        ("optin_at", optin_at.isoformat() if optin_at else ""),
        ("optin_ip", values.get("optin_ip", "").strip()[:64]),
        ("confirmed_at", confirmed_at.isoformat() if confirmed_at else ""),
        ("confirm_ip", values.get("confirm_ip", "").strip()[:64])) if v)
    source = values.get("source", "").strip()[:100] or (
        "import" if columns.tool == "csv" else columns.tool)
    return ImportRow(line, email, name, timezone, joined_at or optin_at or confirmed_at,
                     source, state, left_at, reason if state == "suppressed" else None,
                     sequences, evidence, tags)


def _instant(text: str) -> datetime | None:
    """A time as exports write it: ISO 8601, or with a space and a trailing 'UTC'."""
    text = text.strip().removesuffix(" UTC").strip()
    return parse_instant(text) if text else None


def _merge(first: ImportRow, again: ImportRow) -> tuple[ImportRow, str | None]:
    """One row from two rows of the same address; a clash when both say different things."""
    changes: dict[str, Any] = {}
    if again.tags:  # tags add up: each line may carry some of a person's tags
        changes["tags"] = tuple(dict.fromkeys((*first.tags, *again.tags)))
    for name in ("name", "timezone", "joined_at", "source", "state", "left_at", "reason",
                 "sequences", "evidence"):
        mine, theirs = getattr(first, name), getattr(again, name)
        default = {"source": "import", "state": "active", "evidence": ()}.get(name)
        if theirs in (None, "", default) or theirs == mine:
            continue
        if mine in (None, "", default):
            changes[name] = theirs
            continue
        return first, (f"{again.email} is also on line {first.line}, with a different "
                       f"{name.replace('_', ' ')} ({theirs}, not {mine})")
    return replace(first, **changes), None


def import_rows(store: Store, library: Library, parsed: ParsedFile, *, sequence_key: str,
                now: datetime, file_name: str, dry_run: bool = False,
                skip_invalid: bool = False, progress: Progress | None = None) -> ImportResult:
    """Enroll every valid row in the sequence, with its consent; all or nothing.

    A file with invalid rows changes nothing unless `skip_invalid`. People already in
    the sequence are left as they are, as are people who unsubscribed or are suppressed.
    People the file says left are recorded as unsubscribed or suppressed (with a stopped
    enrollment when a drip export lists this sequence for them), never enrolled; people it
    says are paused are enrolled paused, their first email held.
    """
    sequence = library.sequence(sequence_key)
    if parsed.problems and not skip_invalid:
        raise InvalidFile(parsed.problems)
    slots: dict[str, Any] = {}
    people = []
    for row in parsed.rows:
        if row.timezone not in slots:
            slots[row.timezone] = first_email_of_import(sequence, row.timezone, now)
        first = slots[row.timezone]
        evidence = dict(row.evidence)
        people.append(ImportPerson(
            email=row.email, name=row.name, timezone=row.timezone,
            consented_at=row.joined_at or now, first_step=first.step_key,
            state=row.state, left_at=row.left_at, reason=row.reason,
            was_in_sequence=row.sequences is not None and sequence.key in row.sequences,
            ip=evidence.get("confirm_ip") or evidence.get("optin_ip"),
            confirmed_at=parse_instant(evidence["confirmed_at"]) if "confirmed_at" in evidence
            else None,
            due_at=first.slot.due_at, window_end_at=first.slot.window_end_at,
            details={"source": row.source, "file": file_name, "line": row.line,
                     "imported_at": now.isoformat(), **dict(row.evidence)},
        ))
    result = store.import_enrollments(people, sequence_key=sequence.key, now=now,
                                      dry_run=dry_run, progress=progress)
    tagged = [(row.email, row.tags) for row in parsed.rows
              if row.tags and row.state not in LEFT]
    if tagged and not dry_run:
        store.tag_people(tagged, now)
    return result
