"""Checks of a built book (the smoke book of `make test`, or `make book`'s HTML).

Run after a build with ``KEXUE_BUILT_HTML=<path to _build/html>``; skipped otherwise (the unit
lane runs before any book is built).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
HTML = os.environ.get("KEXUE_BUILT_HTML")

pytestmark = pytest.mark.skipif(not HTML, reason="needs a built book: KEXUE_BUILT_HTML=<html dir>")


def _pages() -> list[Path]:
    return sorted(Path(HTML).glob("book/**/*.html"))


def _chapters() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    return [c["file"] for part in toc["parts"] for c in part["chapters"]][1:]


def test_every_page_was_built():
    built = {str(p.relative_to(HTML).with_suffix("")) for p in _pages()}
    for entry in ["book/intro", "book/claims", *_chapters()]:
        assert entry in built, f"{entry}.html missing from {HTML}"


def test_no_external_script_or_stylesheet():
    """The book reads offline: every script and stylesheet ships with the site."""
    for page in [*_pages(), Path(HTML) / "index.html"]:
        html = page.read_text(encoding="utf-8")
        scripts = re.findall(r"<script[^>]*\ssrc=\"((?:https?:)?//[^\"]+)\"", html)
        sheets = re.findall(r"<link[^>]*rel=\"stylesheet\"[^>]*href=\"((?:https?:)?//[^\"]+)\"",
                            html)
        assert not scripts + sheets, f"{page.name} loads {scripts + sheets} from the network"
    assert (Path(HTML) / "_static" / "mathjax" / "tex-chtml.js").is_file(), "MathJax not shipped"


def test_claims_page_shows_every_chapters_table():
    html = (Path(HTML) / "book" / "claims.html").read_text(encoding="utf-8")
    for entry in _chapters():
        source = (ROOT / f"{entry}.md").read_text(encoding="utf-8")
        archive = re.search(r"kexue\.fm/archives/(\d+)", source).group(1)
        assert f'id="T_claims-{archive}"' in html, f"the claims table of {entry} is not pasted"
    summary = re.sub(r"<[^>]+>", " ", html.split("The claims, chapter by chapter")[0])
    assert "Summary" in summary


def test_no_raw_pandas_or_dict_output():
    for page in _pages():
        text = page.read_text(encoding="utf-8")
        for raw in ("dtype: object", "dtype: float64", "dtype: int64", "Styler object at 0x"):
            assert raw not in text, f"{page.name} shows a raw pandas print ({raw!r})"
