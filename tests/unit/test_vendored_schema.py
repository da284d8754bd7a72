"""The SendGrid schema kept in tests/fixtures matches the shared one whenever both exist."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.sendgrid_standin import SCHEMA_NAME, VENDORED_SCHEMA


def test_the_vendored_schema_is_the_published_one() -> None:
    shared = [parent / SCHEMA_NAME for parent in Path(__file__).resolve().parents
              if (parent / SCHEMA_NAME).exists()]
    if not shared:
        pytest.skip("no ../shared/sendgrid next to this checkout to compare with")
    assert VENDORED_SCHEMA.read_bytes() == shared[0].read_bytes()
