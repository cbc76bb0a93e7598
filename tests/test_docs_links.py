"""Every relative link and image in README.md and docs/*.md points to a file that exists.

Links to sections (``page.md#anchor``) are checked for the page, and for the anchor when it is a
Markdown page: the anchor must be the slug of one of its headings (as myst-parser and GitHub make
them). External links (``http(s)://``, ``mailto:``) are not fetched.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def _prose(text: str) -> str:
    """The page without fenced code blocks and inline code (links there are not links)."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def _slug(heading: str) -> str:
    """GitHub's / myst-parser's anchor of a heading."""
    s = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return s.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.S | re.M)
    return {_slug(m) for m in re.findall(r"^#{1,6} (.+)$", text, flags=re.M)}


def _links(page: Path) -> list[str]:
    return LINK.findall(_prose(page.read_text(encoding="utf-8")))


def _broken(page: Path, root: Path = ROOT) -> list[str]:
    """The relative links and images of ``page`` that point nowhere."""
    bad = []
    for target in _links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):
            continue  # http(s), mailto: not checked offline
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            bad.append(f"{target}: no file {dest.relative_to(root)}")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            bad.append(f"{target}: no heading with anchor #{anchor} in {dest.name}")
    return bad


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_and_images_resolve(page):
    bad = _broken(page)
    assert not bad, f"{page.relative_to(ROOT)}: " + "; ".join(bad)


def test_the_checker_finds_missing_images_pages_and_anchors(tmp_path):
    """The test above can fail; links in code are not links."""
    (tmp_path / "q.md").write_text("# Q\n")
    page = tmp_path / "p.md"
    page.write_text(
        "# A title, here\n![x](img/none.png) [y](q.md) [z](#a-title-here) [w](q.md#nope)\n"
        "[v](gone.md) `[c](n.md)`\n```\n[d](m.md)\n```\n"
    )
    assert _links(page) == ["img/none.png", "q.md", "#a-title-here", "q.md#nope", "gone.md"]
    bad = _broken(page, tmp_path)
    assert [b.split(":")[0] for b in bad] == ["img/none.png", "q.md#nope", "gone.md"]


def test_every_docs_page_is_in_the_site():
    """Each Markdown page of docs/ is reachable from the site's table of contents."""
    index = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^([a-z_]+)$", index, flags=re.M))
    pages = {p.stem for p in (ROOT / "docs").glob("*.md")} - {"index"}
    assert pages <= listed, f"not in docs/index.md's toctree: {sorted(pages - listed)}"
