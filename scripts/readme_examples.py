"""Regenerate the README's example outputs from real runs at 100 columns.

usage: python scripts/readme_examples.py [FILE.md ...] [--check]     (default: README.md and docs/CLI.md)
Each block between `<!-- example: NAME -->` and `<!-- /example -->` is replaced by the command of EXAMPLES[NAME]
and what it prints with COLUMNS=100 (the first `lines` lines when an excerpt is enough). --check exits 1
when a block differs from a fresh run (tests/test_recommend_table.py runs it).
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

WIDTH = 100
EXAMPLES = {  # name: (arguments of `energylens`, lines kept or None for all)
    "recommend": (["recommend", "--model", "meta-llama/Llama-3.1-70B", "--gpu", "H100", "--gpu", "B200",
                   "--max-gpus", "8", "--input-tokens", "1024", "--output-tokens", "256"], None),
    "catalog": (["catalog", "models"], 12),
}
BLOCK = re.compile(r"(<!-- example: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /example -->)", re.S)


def run(args: list[str]) -> str:
    """What `energylens ARGS` prints at WIDTH columns (in-process, as a user's terminal would show it)."""
    from typer.testing import CliRunner

    from energylens.cli.main import app

    result = CliRunner().invoke(app, args, env={"COLUMNS": str(WIDTH)})
    if result.exit_code != 0:
        raise SystemExit(f"energylens {' '.join(args)} failed (exit {result.exit_code}): {result.output[-300:]}")
    return result.output


def block(name: str) -> str:
    args, keep = EXAMPLES[name]
    lines = [line.rstrip() for line in run(args).splitlines()]
    shown = lines if keep is None else lines[:keep] + [f"... ({len(lines) - keep} more lines)"]
    return f"```text\n$ COLUMNS={WIDTH} energylens {' '.join(args)}\n" + "\n".join(shown) + "\n```\n"


def render(text: str) -> str:
    return BLOCK.sub(lambda m: m.group(1) + block(m.group("name")) + m.group(4), text)


ROOT = Path(__file__).resolve().parents[1]
FILES = (ROOT / "README.md", ROOT / "docs" / "CLI.md")  # the files whose examples are generated


def main(argv: list[str]) -> int:
    check = "--check" in argv
    paths = [Path(a) for a in argv if a != "--check"] or list(FILES)
    stale = 0
    for path in paths:
        text = path.read_text(encoding="utf-8")
        new = render(text)
        if new == text:
            continue
        if check:
            print(f"{path}: example outputs are stale; run python scripts/readme_examples.py", file=sys.stderr)
            stale += 1
            continue
        from energylens.io import atomic_write_bytes

        atomic_write_bytes(path, new.encode("utf-8"))
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
