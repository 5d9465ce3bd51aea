"""The runnable notebook generated from every chapter (``_ext/runnable_notebooks.py``).

These check the conversion on every chapter in well under a second each; executing the
notebooks in a fresh environment is `make check-notebooks` (tests/reader/check_notebooks.py).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "_ext"))

import runnable_notebooks as rn  # noqa: E402

CHAPTERS = sorted((ROOT / "book").glob("*/*.md"))


@pytest.fixture(scope="module")
def bib():
    return rn.load_bibliography(ROOT / "references.bib")


@pytest.fixture(scope="module")
def titles():
    return rn.page_titles(ROOT / "book")


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_becomes_a_plain_notebook(path, bib, titles):
    nb = rn.runnable_notebook(path, bib, "kexue", titles)
    assert not rn.leftover_myst(nb), rn.leftover_myst(nb)[:5]
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    source = path.read_text(encoding="utf-8")

    # The install cell and the visible scale cell come before the chapter's first code cell.
    assert code[0].endswith("%pip install --quiet kexue")
    assert 'os.environ.setdefault("KEXUE_SCALE"' in code[1] and "smoke" in code[1]
    assert "banner()" in code[2]
    assert not any(c.outputs for c in nb.cells if c.cell_type == "code")

    # Every literalinclude is inlined as the library's source.
    for name in re.findall(r":pyobject:\s*(\S+)", source):
        short = name.split(".")[-1]
        assert re.search(rf"^\s*(def|class) {short}\b", markdown, flags=re.M), name

    # Equations are numbered as in the book, and references point at those numbers.
    labels = re.findall(r"\$\$\s*\(([\w-]+)\)", source)
    assert markdown.count("\\tag{") == len(labels)

    # Citations read "(Author, year)" and the references list every cited work.
    cited = {k.strip() for g in re.findall(r"\{cite(?::\w+)?\}`([^`]+)`", source)
             for k in g.split(",")}
    for key in cited:
        assert f"[{bib[key]['label']}]" in markdown, key


def test_pyobject_source_includes_decorators_and_methods(tmp_path):
    lib = tmp_path / "m.py"
    lib.write_text("import x\n\n\n@deco(1)\nclass A:\n    def f(self):\n        return 1\n\n"
                   "    def g(self):\n        return 2\n", encoding="utf-8")
    assert rn._pyobject_source(lib, "A").startswith("@deco(1)\nclass A:")
    assert rn._pyobject_source(lib, "A.g") == "    def g(self):\n        return 2"
    with pytest.raises(ValueError, match="no definition 'B'"):
        rn._pyobject_source(lib, "B")


def test_unknown_directive_and_citation_raise(tmp_path, bib):
    page = tmp_path / "p.md"
    page.write_text("# T\n\n```{figure} x.png\n```\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no plain-Markdown form for the directive"):
        rn.runnable_notebook(page, bib, "kexue")
    page.write_text("# T\n\nSee {cite}`nobody2099`.\n", encoding="utf-8")
    with pytest.raises(ValueError, match="nobody2099"):
        rn.runnable_notebook(page, bib, "kexue")


def test_notes_glue_and_links_become_plain_markdown(tmp_path, bib):
    (tmp_path / "other.md").write_text("# The other chapter\n", encoding="utf-8")
    page = tmp_path / "p.md"
    page.write_text(
        "# T\n\nF1 is {glue:text}`f1:.3f`, see {doc}`other` and {doc}`that page <other>`.\n\n"
        "$$ x = 1 $$ (eq-x)\n\nBy {eq}`eq-x`.\n\n```{note}\nA **note** with {eq}`eq-x`.\n```\n",
        encoding="utf-8")
    nb = rn.runnable_notebook(page, bib, "kexue", rn.page_titles(tmp_path))
    text = nb.cells[0].source
    assert "F1 is […]" in text and "*The other chapter*" in text and "*that page*" in text
    assert "\\tag{1}" in text and "By (1)." in text
    assert "> **Note.**" in text and "> A **note** with (1)." in text


def test_leftover_myst_sees_roles_in_prose_but_not_in_inlined_code():
    import nbformat

    code = "```python\ndef f():\n    \"\"\"``g_{l-1} = W g_l``; see {eq}`x`.\"\"\"\n```\n"
    prose = "The gradient {eq}`rnn-bound` and\n```{note}\nA box.\n```\n"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(code),
                                         nbformat.v4.new_markdown_cell(prose)])
    assert rn.leftover_myst(nb) == ["{eq}`rnn-bound`", "```{note}"]
