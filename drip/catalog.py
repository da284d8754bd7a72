"""The product catalog (sequences/catalog.yaml): what buying each product does in drip.

A product may start a sequence and sets tags; a product without a sequence is a
conversion that later nudges respect. Mistakes are reported like sequence files:
the file, the line, the field and the fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from drip.errors import InvalidInput, SequenceError
from drip.sequence import Key, Library, _line_of, _read_yaml, _validate

CATALOG_FILE = "catalog.yaml"


class Product(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key: Annotated[Key, Field(min_length=1, max_length=100)]
    name: str = ""
    sequence: str | None = None
    tags: list[str] = []

    @field_validator("tags")
    @classmethod
    def _tags_short(cls, value: list[str]) -> list[str]:
        if any(not tag.strip() or len(tag) > 100 for tag in value):
            raise ValueError("each tag must be 1 to 100 characters")
        return value

    @property
    def is_conversion(self) -> bool:
        return self.sequence is None


class Catalog(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    products: list[Product] = []

    def product(self, key: str) -> Product:
        found = next((p for p in self.products if p.key == key), None)
        if found is None:
            raise InvalidInput(f"'{key[:100]}' is not a product in {CATALOG_FILE}; add it there "
                               "or send one of its product keys.")
        return found


def load_catalog(sequences_dir: Path, library: Library) -> Catalog:
    """sequences/catalog.yaml, checked against the sequences it starts; empty if absent."""
    path = sequences_dir / CATALOG_FILE
    if not path.exists():
        return Catalog()
    data, root = _read_yaml(path)
    catalog = _validate(Catalog, data or {}, path, root)
    seen: set[str] = set()
    for index, product in enumerate(catalog.products):
        if product.key in seen:
            raise SequenceError(
                f"The product key '{product.key}' is used twice.", file=str(path),
                line=_line_of(root, ("products", index, "key")),
                field=f"products.{index}.key", fix="give each product its own key",
            )
        seen.add(product.key)
        if product.sequence is not None and product.sequence not in library.sequences:
            known = ", ".join(sorted(library.sequences)) or "none"
            raise SequenceError(
                f"'{product.sequence}' is not a sequence.", file=str(path),
                line=_line_of(root, ("products", index, "sequence")),
                field=f"products.{index}.sequence",
                fix=f"use one of: {known}, or remove 'sequence:' to make it a conversion",
            )
    return catalog
