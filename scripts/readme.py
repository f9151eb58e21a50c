"""Regenerate the docs' generated sections from the code they describe:

    python scripts/readme.py          # rewrite the docs in place
    python scripts/readme.py --check  # exit 1 if any is out of date

- docs/functions.md, functions: the supported functions by Excel category
  (excelnet.formula.functions.markdown);
- docs/functions.md, oracle: the table of Excel's own answers, by category (tests/oracle.py over
  the corpus; this takes a minute or two);
- docs/architecture.md, layout: the package's modules, one line each (scripts/architecture.py).
tests/test_oracle.py checks the first two against a fresh computation, tests/test_docs.py the
layout. The README itself has no generated section: it is written by hand.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS = ROOT / "docs" / "functions.md"
ARCHITECTURE = ROOT / "docs" / "architecture.md"


def section(text: str, name: str, body: str, where: str = "the file") -> str:
    """text with the lines between <!-- name --> and <!-- /name --> replaced by body."""
    pattern = re.compile(rf"(<!-- {name} -->\n).*?(<!-- /{name} -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"{where} has no <!-- {name} --> … <!-- /{name} --> section")
    return pattern.sub(lambda m: m.group(1) + body + "\n" + m.group(2), text)


def generated() -> dict[Path, dict[str, str]]:
    """Each doc's generated sections, by name, computed afresh."""
    import tempfile

    sys.path.insert(0, str(ROOT))
    from excelnet.formula.functions import markdown
    from scripts.architecture import layout
    from tests.oracle import corpus_files, run, table

    with tempfile.TemporaryDirectory() as tmp:
        results = [run(path, Path(tmp)) for path in corpus_files()]
    return {
        FUNCTIONS: {"functions": markdown(), "oracle": table(results)},
        ARCHITECTURE: {"layout": layout()},
    }


def main() -> int:
    stale = []
    for path, bodies in generated().items():
        text = path.read_text(encoding="utf-8")
        new = text
        for name, body in bodies.items():
            new = section(new, name, body, path.relative_to(ROOT).as_posix())
        if new != text:
            stale.append(path)
            if "--check" not in sys.argv:
                path.write_text(new, encoding="utf-8")
    if stale and "--check" in sys.argv:
        names = ", ".join(p.relative_to(ROOT).as_posix() for p in stale)
        print(f"{names}: out of date, run python scripts/readme.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
