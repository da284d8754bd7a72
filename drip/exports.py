"""Exporting subscribers or deliveries as rows for CSV or JSON files."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict
from datetime import datetime
from typing import Any

from drip.addresses import zone
from drip.errors import InvalidInput
from drip.store import SendFilter, SendRow, Store

KINDS = ("subscribers", "deliveries")
FORMATS = ("csv", "json")


def export_rows(store: Store, kind: str) -> list[dict[str, Any]]:
    """Every subscriber, or every delivery (newest first), as plain rows."""
    if kind == "subscribers":
        return store.export_subscribers()
    if kind == "deliveries":
        return [send_record(row) for row in store.sends(SendFilter(limit=None))]
    raise InvalidInput(f"'{kind}' cannot be exported; use one of {', '.join(KINDS)}.")


def send_record(row: SendRow) -> dict[str, Any]:
    """One delivery as `drip sends --json` and `drip export deliveries` give it: its columns,
    plus when it last did something (`at`) in UTC and in the subscriber's time."""
    data = asdict(row)
    data["at"] = row.at
    data["local_at"] = row.at.astimezone(zone(row.timezone))
    return data


def serialise(rows: list[dict[str, Any]], file_format: str) -> str:
    """The rows as CSV (header first; lists joined with ';') or as a JSON array."""
    if file_format == "json":
        return json.dumps(rows, indent=2, default=_plain) + "\n"
    if file_format != "csv":
        raise InvalidInput(f"'{file_format}' is not a format; use csv or json.")
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(v) for k, v in row.items()})
    return out.getvalue()


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list):
        return ";".join(map(str, value))
    if isinstance(value, dict):
        return json.dumps(value)
    return "" if value is None else value
