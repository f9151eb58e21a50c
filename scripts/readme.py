"""Regenerate the README's generated sections from the code they describe:

    python scripts/readme.py          # rewrite README.md in place
    python scripts/readme.py --check  # exit 1 if it is out of date

- functions: the supported functions by Excel category (excelnet.formula.functions.markdown);
- oracle: the table of Excel's own answers, by category (tests/oracle.py over the corpus).
tests/test_oracle.py checks both against a fresh computation.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def section(text: str, name: str, body: str) -> str:
    """text with the lines between <!-- name --> and <!-- /name --> replaced by body."""
    pattern = re.compile(rf"(<!-- {name} -->\n).*?(<!-- /{name} -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"README.md has no <!-- {name} --> … <!-- /{name} --> section")
    return pattern.sub(lambda m: m.group(1) + body + "\n" + m.group(2), text)


def generated() -> dict[str, str]:
    import tempfile

    sys.path.insert(0, str(ROOT))
    from excelnet.formula.functions import markdown
    from tests.oracle import corpus_files, run, table

    with tempfile.TemporaryDirectory() as tmp:
        results = [run(path, Path(tmp)) for path in corpus_files()]
    return {"functions": markdown(), "oracle": table(results)}


def main() -> int:
    text = README.read_text()
    new = text
    for name, body in generated().items():
        new = section(new, name, body)
    if "--check" in sys.argv:
        if new != text:
            print("README.md is out of date: run python scripts/readme.py", file=sys.stderr)
            return 1
        return 0
    README.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
