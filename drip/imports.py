"""Importing people from a CSV file (a shop's order export, say) into a sequence.

Every row is checked before anything is written; a file with a bad row changes
nothing unless the operator says to skip bad rows. Re-running an import changes
nothing for people already enrolled, so it is safe to run twice.
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
from drip.planner import first_email
from drip.sequence import Library
from drip.store import ImportPerson, ImportResult, Store

COLUMNS = ("email", "name", "timezone", "joined_at", "source")
Progress = Callable[[int], None]


@dataclass(frozen=True)
class ImportRow:
    line: int
    email: str
    name: str
    timezone: str
    joined_at: datetime | None
    source: str


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


def parse_csv(data: bytes, *, progress: Progress | None = None) -> ParsedFile:
    """Check every row of a CSV file whose header names the columns email, name, timezone,
    joined_at and source (only email is required; other columns are ignored)."""
    parsed = ParsedFile()
    raw_lines = data.split(b"\n")
    if raw_lines and raw_lines[-1] == b"":
        raw_lines.pop()
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
            text = ""
        text_lines.append(text.rstrip("\r"))
    parsed.lines = len(text_lines)
    reader = csv.reader(text_lines)
    header = _header(next(reader, None), parsed)
    first_seen: dict[str, int] = {}
    for fields in reader:
        line = reader.line_num
        if progress is not None and line % 5000 == 0:
            progress(5000)
        if not fields or not any(f.strip() for f in fields):
            continue
        if len(fields) != len(header):
            parsed.problems.append(Problem(line, f"{len(fields)} columns, but the header has "
                                           f"{len(header)}"))
            continue
        row = _row(line, dict(zip(header, fields, strict=True)), parsed)
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
    if progress is not None:
        progress(parsed.lines % 5000)
    parsed.rows = [row if row.timezone else replace(row, timezone="UTC") for row in parsed.rows]
    parsed.problems.sort(key=lambda p: p.line)
    return parsed


def _header(fields: list[str] | None, parsed: ParsedFile) -> list[str]:
    if fields is None:
        raise InvalidInput("The file is empty; it needs a header row such as "
                           "email,name,timezone,joined_at,source.")
    header = [f.strip().lower() for f in fields]
    if "email" not in header:
        for separator, called in ((";", "semicolons"), ("\t", "tabs")):
            if any("email" in [c.strip() for c in h.split(separator)] for h in header):
                raise InvalidInput(f"The header row is separated by {called}, not commas; "
                                   "save the file as comma-separated CSV, with a header "
                                   "such as email,name,timezone,joined_at,source.")
        raise InvalidInput("The header row has no 'email' column; name the columns on the "
                           "first line, such as email,name,timezone,joined_at,source.")
    for name in COLUMNS:  # two columns of one name: which one would count is a guess
        where = [str(n) for n, h in enumerate(header, start=1) if h == name]
        if len(where) > 1:
            raise InvalidInput(f"The header row has the column '{name}' more than once "
                               f"(columns {' and '.join(where)}); rename or remove all "
                               "but one.")
    parsed.ignored_columns = [h for h in header if h not in COLUMNS]
    return header


def _row(line: int, values: dict[str, str], parsed: ParsedFile) -> ImportRow | None:
    try:
        email = normalise_email(values["email"])
        given = values.get("timezone", "").strip()
        # blank stays blank until duplicates are merged: UTC written out is a timezone
        timezone = validate_timezone(given) if given else ""
        joined = values.get("joined_at", "").strip()
        joined_at = parse_instant(joined) if joined else None
    except InvalidInput as exc:
        parsed.problems.append(Problem(line, str(exc).rstrip(".")))
        return None
    name = clean_name(values.get("name", ""), limit=None)
    if len(name) > 200:
        parsed.problems.append(Problem(line, "the name is longer than 200 characters"))
        return None
    return ImportRow(line, email, name, timezone, joined_at,
                     values.get("source", "").strip()[:100] or "import")


def _merge(first: ImportRow, again: ImportRow) -> tuple[ImportRow, str | None]:
    """One row from two rows of the same address; a clash when both say different things."""
    changes: dict[str, Any] = {}
    for name in ("name", "timezone", "joined_at", "source"):
        mine, theirs = getattr(first, name), getattr(again, name)
        default = "import" if name == "source" else None
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
    """
    sequence = library.sequence(sequence_key)
    if parsed.problems and not skip_invalid:
        raise InvalidFile(parsed.problems)
    slots: dict[str, Any] = {}
    people = []
    for row in parsed.rows:
        if row.timezone not in slots:
            slots[row.timezone] = first_email(sequence, row.timezone, now)
        first = slots[row.timezone]
        people.append(ImportPerson(
            email=row.email, name=row.name, timezone=row.timezone,
            consented_at=row.joined_at or now, first_step=first.step_key,
            due_at=first.slot.due_at, window_end_at=first.slot.window_end_at,
            details={"source": row.source, "file": file_name, "line": row.line,
                     "imported_at": now.isoformat()},
        ))
    return store.import_enrollments(people, sequence_key=sequence.key, now=now,
                                    dry_run=dry_run, progress=progress)
