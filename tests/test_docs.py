"""Docs generated from the code stay equal to it: the term table and the shipped model in MODEL.md."""
from pathlib import Path

from energylens.export.markdown import BLOCKS, render

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_model_md_blocks_are_generated_from_the_term_table():
    text = (DOCS / "MODEL.md").read_text()
    for name in BLOCKS:
        assert f"<!-- generated: {name} -->" in text, name
    assert render(text) == text, "docs/MODEL.md is stale: run python -m energylens.export.markdown docs/MODEL.md"


def test_every_term_of_the_table_is_in_model_md():
    from energylens.model.terms import COMPACT_TERMS, CORRECTIONS, PHYSICS_TERMS, TIME_TERMS

    text = (DOCS / "MODEL.md").read_text()
    for t in (*PHYSICS_TERMS, *COMPACT_TERMS, *TIME_TERMS):
        assert f"`{t.name}`" in text
        for expr in (getattr(t, a, None) for a in ("prefill", "decode", "itl", "ttft")):
            assert expr is None or f"`{expr}`" in text
    for c in CORRECTIONS:
        assert f"`{c.expression}`" in text
