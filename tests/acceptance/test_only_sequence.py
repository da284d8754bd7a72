"""`--sequence` may be left out where the library has exactly one sequence (the real `drip`)."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.acceptance.conftest import Run
from tests.conftest import FIXTURES


def test_the_only_sequence_is_used_when_none_is_given(drip_cli: Run) -> None:
    enrolled = drip_cli("enroll", "ana@example.com", check=True)
    assert "Enrolled ana@example.com in basic" in enrolled.stdout


def test_with_two_sequences_the_operator_is_told_which_there_are(
        drip_cli: Run, process_env: dict[str, str], tmp_path: Path) -> None:
    sequences = tmp_path / "sequences"
    shutil.copytree(FIXTURES / "basic" / "sequences", sequences)
    second = (sequences / "basic.yaml").read_text().replace("key: basic", "key: second", 1)
    (sequences / "second.yaml").write_text(second)
    process_env["DRIP_SEQUENCES_DIR"] = str(sequences)
    unnamed = drip_cli("enroll", "ana@example.com")
    assert unnamed.returncode == 2, unnamed.stdout + unnamed.stderr
    assert "Give --sequence: there are 2 sequences (basic, second)." in unnamed.stderr
    typo = drip_cli("enroll", "ana@example.com", "--sequence", "secnod")
    assert typo.returncode == 2 and "did you mean second?" in typo.stderr
    csv = tmp_path / "people.csv"
    csv.write_text("email\nbo@example.com\n")
    imported = drip_cli("import", str(csv))
    assert imported.returncode == 2 and "there are 2 sequences" in imported.stderr
    assert "Traceback" not in unnamed.stderr + typo.stderr + imported.stderr
