"""The columns of other tools' exports, mapped onto the fields `drip import` reads.

Each tool's standard export is a preset (`--from kit|mailchimp|shopify|csv`); `--map
'Their Column=field'` adds or replaces one column of a preset. Headers match in any case.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from drip.errors import InvalidInput

#: The fields an import reads. The first ten are drip's own export's columns.
FIELDS = ("email", "name", "timezone", "joined_at", "source", "state", "unsubscribed_at",
          "suppressed_at", "suppressed_reason", "sequences",
          "first_name", "last_name", "consent", "optin_at", "optin_ip", "confirmed_at",
          "confirm_ip", "tags")

PRESETS: dict[str, dict[str, str]] = {
    "csv": {name: name for name in FIELDS},
    # Mailchimp's audience export: subscribed, unsubscribed and cleaned members, one file
    # each; the unsubscribed file adds UNSUB_TIME, the cleaned (bounced) file CLEAN_TIME.
    "mailchimp": {
        "email address": "email", "first name": "first_name", "last name": "last_name",
        "timezone": "timezone", "optin_time": "optin_at", "optin_ip": "optin_ip",
        "confirm_time": "confirmed_at", "confirm_ip": "confirm_ip",
        "unsub_time": "unsubscribed_at", "clean_time": "suppressed_at", "tags": "tags",
    },
    # Kit (ConvertKit): subscribers export; state is active, cold, inactive (never
    # confirmed), cancelled, bounced or complained.
    "kit": {
        "email_address": "email", "first_name": "first_name", "created_at": "joined_at",
        "state": "state", "status": "state",
    },
    # Shopify: Customers -> Export; only people with Accepts Email Marketing = yes agreed.
    "shopify": {
        "email": "email", "first name": "first_name", "last name": "last_name",
        "accepts email marketing": "consent", "tags": "tags",
    },
}
TOOLS = tuple(PRESETS)
TOOL_NAMES = {"csv": "drip", "mailchimp": "Mailchimp", "kit": "Kit", "shopify": "Shopify"}


@dataclass(frozen=True)
class ColumnMap:
    """Which of a file's columns (lower case) holds which field, for one tool's export."""

    tool: str
    columns: dict[str, str]

    @property
    def email_column(self) -> str:
        return next(c for c, f in self.columns.items() if f == "email")


def column_map(tool: str = "csv", overrides: Sequence[str] = ()) -> ColumnMap:
    """The preset of `tool`, with each `COLUMN=field` of `overrides` added over it."""
    if tool not in PRESETS:
        raise InvalidInput(f"--from '{tool}' is not a tool drip knows; use one of "
                           f"{', '.join(TOOLS)} (and --map for other columns).")
    columns = dict(PRESETS[tool])
    for override in overrides:
        column, sep, target = override.rpartition("=")
        column, target = column.strip().lower(), target.strip().lower()
        if not sep or not column:
            raise InvalidInput(f"--map '{override}' is not COLUMN=field; write it like "
                               "--map 'Email Address=email'.")
        if target not in FIELDS:
            raise InvalidInput(f"--map '{override}' names the field '{target}', which drip "
                               f"does not read; use one of {', '.join(FIELDS)}.")
        # a field comes from one column: the new one replaces the preset's
        columns = {c: f for c, f in columns.items() if f != target}
        columns[column] = target
    if "email" not in columns.values():
        raise InvalidInput("No column is mapped to email; add --map 'YOUR COLUMN=email'.")
    return ColumnMap(tool, columns)
