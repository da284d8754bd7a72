"""The product catalog: the sample loads and agrees with the offers; mistakes name the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from drip.catalog import load_catalog
from drip.errors import InvalidInput, SequenceError
from drip.sequence import load_library
from tests.conftest import ROOT


def test_sample_catalog_starts_the_program_and_knows_the_conversions() -> None:
    library = load_library(ROOT / "sequences")
    catalog = load_catalog(ROOT / "sequences", library)
    assert catalog.product("pht-7-week").sequence == "pht-7-week"
    conversions = {p.key for p in catalog.products if p.is_conversion}
    assert conversions == {"12-week-program", "running-workshop", "running-assessment",
                           "strength-assessment"}
    assert conversions == {o.key for o in library.offers.offers}  # nudges can respect them
    with pytest.raises(InvalidInput, match=r"catalog\.yaml"):
        catalog.product("nope")


def write(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "sequences"
    folder.mkdir()
    (folder / "catalog.yaml").write_text(text)
    return folder


@pytest.mark.parametrize("text,line,field,problem", [
    ("products:\n  - key: a\n    sequence: nope\n", 3, "products.0.sequence", "not a sequence"),
    ("products:\n  - key: a\n  - key: a\n", 3, "products.1.key", "used twice"),
    ("products:\n  - key: Bad Key\n", 2, "products.0.key", "lower-case"),
    ("products:\n  - key: a\n    colour: red\n", 3, "products.0.colour", "not a known field"),
    ("products:\n  - name: x\n", 2, "products.0.key", "required"),
])
def test_catalog_mistakes_name_file_line_field(tmp_path: Path, text: str, line: int, field: str,
                                               problem: str) -> None:
    folder = write(tmp_path, text)
    library = load_library(ROOT / "sequences")
    with pytest.raises(SequenceError) as caught:
        load_catalog(folder, library)
    error = caught.value
    assert (error.file, error.line, error.field) == (str(folder / "catalog.yaml"), line, field)
    assert problem in str(error)


def test_no_catalog_means_no_products(tmp_path: Path) -> None:
    assert load_catalog(tmp_path, load_library(ROOT / "sequences")).products == []
