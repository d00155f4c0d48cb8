"""Size and shape of a source tree: lines, imports inside functions, functions taking more than 8 parameters.

usage: python scripts/code_metrics.py [FOLDER]   (default: src/energylens)
Compare two versions with `git archive REV src | tar -x -C /tmp/old` and this script on each.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path


def metrics(root: Path) -> dict[str, int]:
    lines = function_imports = many_parameters = 0
    for path in sorted(root.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        lines += text.count("\n")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                a = node.args
                own = 1 if a.args and a.args[0].arg in ("self", "cls") else 0
                many_parameters += len(a.posonlyargs) + len(a.args) + len(a.kwonlyargs) - own > 8
                function_imports += sum(isinstance(s, (ast.Import, ast.ImportFrom)) for s in ast.walk(node))
    return {"lines": lines, "function-level imports": function_imports, "functions with > 8 parameters": many_parameters}


if __name__ == "__main__":
    found = metrics(Path(sys.argv[1] if len(sys.argv) > 1 else "src/energylens"))
    print(", ".join(f"{k} {v:,}" for k, v in found.items()))
