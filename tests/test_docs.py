"""The documentation: the README stays a short read whose links lead somewhere, every relative
link in the docs reaches a file (and a heading, where it names one), and the package layout in
docs/architecture.md is the tree's own (scripts/architecture.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from scripts.architecture import ARCHITECTURE, layout
from scripts.readme import section

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, ROOT / "CHANGELOG.md", *DOCS]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def links(page: Path) -> list[str]:
    """The relative link targets of a markdown page, outside code blocks."""
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    return [t for t in LINK.findall(text) if not re.match(r"[a-z][a-z0-9+.-]*:", t)]


def anchors(page: Path) -> set[str]:
    """The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces as
    hyphens, a repeated heading numbered."""
    seen: dict[str, int] = {}
    out = set()
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*$", text, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def test_readme_is_a_short_read():
    n = len(README.read_text(encoding="utf-8"))
    assert n <= 12_000, f"README.md has {n:,} characters: move details into docs/"


def test_readme_links_to_the_docs():
    targets = {t.split("#")[0] for t in links(README)}
    assert {f"docs/{p.name}" for p in DOCS} <= targets, "a docs/ page the README does not link"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_lead_somewhere(page):
    broken = []
    for target in links(page):
        path, _, anchor = target.partition("#")
        where = (page.parent / path).resolve() if path else page
        if not where.exists():
            broken.append(f"{target}: no such file")
        elif anchor and where.suffix == ".md" and anchor not in anchors(where):
            broken.append(f"{target}: no such heading")
    assert not broken, f"{page.name}: " + "; ".join(broken)


def test_architecture_lists_the_tree():
    text = ARCHITECTURE.read_text(encoding="utf-8")
    assert section(text, "layout", layout(), ARCHITECTURE.name) == text, (
        "docs/architecture.md is out of date: run python scripts/architecture.py"
    )
