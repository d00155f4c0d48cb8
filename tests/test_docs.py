"""Docs generated from the code stay equal to it: the term table and the shipped model in MODEL.md."""
from pathlib import Path

from energylens.export.markdown import BLOCKS, render

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_model_md_blocks_are_generated_from_the_term_table():
    text = (DOCS / "MODEL.md").read_text()
    for name in BLOCKS:
        assert f"<!-- generated: {name} -->" in text, name
    assert render(text) == text, "docs/MODEL.md is stale: run python -m energylens.export.markdown docs/MODEL.md"


def test_every_definition_coefficient_and_correction_is_in_model_md():
    from energylens.model.structure import compact_structure, physics_structure
    from energylens.model.terms import CORRECTIONS

    text = (DOCS / "MODEL.md").read_text()
    for s in (physics_structure(), compact_structure()):
        for c in s.coefficients:
            assert f"`{c.name}`" in text
        for d in s.time:  # as written, or inside its hardware floor max(..., floor)
            assert f"`{d.expression}`" in text or f"max({d.expression}, " in text
    for d in physics_structure().definitions():
        assert f"`{d.name}`" in text and f"`{d.expression.replace('|', chr(92) + '|')}`" in text
    for c in CORRECTIONS:
        assert f"`{c.expression}`" in text
