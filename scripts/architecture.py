"""Regenerate the package layout in docs/architecture.md from the tree itself: one line per
module and package of excelnet/, each its docstring's first sentence (read with ast, nothing
imported), so the layout cannot drift from the code as modules move.

    python scripts/architecture.py          # rewrite docs/architecture.md in place
    python scripts/architecture.py --check  # exit 1 if it is out of date

tests/test_docs.py checks it; scripts/readme.py regenerates it with the other generated docs.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "excelnet"
ARCHITECTURE = ROOT / "docs" / "architecture.md"
NONE = "(no docstring)"


def first_sentence(doc: str | None) -> str:
    """The docstring's first sentence: up to the first '.', '!' or '?' that ends a word and is
    followed by a space, within its first paragraph, on one line."""
    if not doc or not doc.strip():
        return NONE
    paragraph = " ".join(doc.strip().split("\n\n")[0].split())
    match = re.match(r"(.+?[.!?])(?=\s|$)", paragraph)
    return match.group(1) if match else paragraph


def summary(path: Path) -> str:
    """The first sentence of a module's docstring (a package's from its __init__.py)."""
    if path.is_dir():
        path = path / "__init__.py"
        if not path.exists():
            return NONE
    return first_sentence(ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))))


def _holds_python(folder: Path) -> bool:
    return any(folder.rglob("*.py"))


def entries(folder: Path, depth: int = 0) -> list[tuple[int, Path]]:
    """(depth, path) for each module of folder, then each package, each alphabetically, and
    below each package its own entries; __init__.py stands for its package."""
    files = sorted(p for p in folder.glob("*.py") if p.name != "__init__.py")
    folders = sorted(
        p
        for p in folder.iterdir()
        if p.is_dir() and p.name != "__pycache__" and not p.name.startswith(".")
        if _holds_python(p)
    )
    out = [(depth, p) for p in files]
    for p in folders:
        out.append((depth, p))
        out.extend(entries(p, depth + 1))
    return out


def layout(package: Path = PACKAGE) -> str:
    """The markdown list of the package's modules, one line each."""
    lines = [f"- `{package.name}/` — {summary(package)}"]
    for depth, path in entries(package, 1):
        name = path.name + ("/" if path.is_dir() else "")
        lines.append(f"{'  ' * depth}- `{name}` — {summary(path)}")
    return "\n".join(lines)


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from scripts.readme import section

    text = ARCHITECTURE.read_text(encoding="utf-8")
    new = section(text, "layout", layout(), ARCHITECTURE.name)
    if "--check" in sys.argv:
        if new != text:
            print(
                "docs/architecture.md is out of date: run python scripts/architecture.py",
                file=sys.stderr,
            )
            return 1
        return 0
    ARCHITECTURE.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
