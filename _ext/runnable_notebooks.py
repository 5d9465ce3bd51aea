"""Sphinx extension of the book: a runnable notebook for every chapter, offered on its page.

A chapter is a MyST-markdown notebook that only the book can render: its prose holds
``{cite}``, ``{eq}``, ``{glue:text}`` and ``{doc}`` roles, and the library code it explains is
pulled in by ``{literalinclude}``. Opened in plain Jupyter or Colab it would show raw roles and
no library code. This extension turns each chapter, at build time and from the chapter itself
(never a second hand-kept copy), into a plain ``.ipynb``:

- a first cell that installs the library (``runnable_install`` in ``_config.yml``: the wheel
  published with the book, or the package name once it is on an index) and a visible cell that
  sets ``KEXUE_SCALE``, with the three scales explained;
- every ``{literalinclude}`` inlined as a Python code block of the library's source;
- citations as "(Su, 2019a)", equation references as "(3)" (the equations carry ``\\tag{3}``),
  glued numbers as […] (the code cells print them), links to other chapters as their titles,
  ``{note}`` boxes as Markdown quotes, and the bibliography as a list of the cited works.

The notebooks are written to ``_build/html/notebooks/<part>/<slug>.ipynb``; every chapter page
offers its notebook in the download menu, and a Colab button when ``runnable_colab`` names the
GitHub repository, branch and folder where the notebooks are published. Wheels found in
``runnable_wheels`` (default ``_build/dist``) are copied to ``_build/html/dist``.

The conversion is a plain function, :func:`runnable_notebook`, also used by the tests.
"""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

import nbformat

NOTEBOOK_DIR = "notebooks"
WHEEL_DIR = "dist"

SCALE_CELL = '''import os

# Every budget of this notebook (examples, epochs, widths) follows one setting:
#   "smoke": about a minute on a CPU; checks that every cell runs, proves nothing;
#   "book":  a few minutes on two CPU cores; the article's claim, visibly, at a small scale;
#   "full":  the article's own setting and numbers; meant for a GPU (minutes to hours).
os.environ.setdefault("KEXUE_SCALE", "full")
print("KEXUE_SCALE =", os.environ["KEXUE_SCALE"])'''

INTRO = '''*This notebook was generated from the chapter of* Executable Scientific Spaces *of the same
name. It runs on Colab or any machine with TensorFlow 2.16 or newer: the first cell installs the
book's library `kexue`, the second chooses the scale. Where the book's page writes a number of
its run into the text, this notebook shows […]: the code cells print it.*'''


# --------------------------------------------------------------------------- bibliography


def load_bibliography(bib_path) -> dict[str, dict]:
    """Labels ("Su, 2018a") and one-line references of every entry of a BibTeX file."""
    from author_year_labels import AuthorYearLabels  # the book's own label style
    from pybtex.database import parse_file
    from pybtex.plugin import find_plugin

    data = parse_file(str(bib_path))
    entries = list(data.entries.values())
    labels = dict(zip((e.key for e in entries), AuthorYearLabels().format_labels(entries)))
    style = find_plugin("pybtex.style.formatting", "plain")()
    out = {}
    for entry in entries:
        try:
            text = style.format_entry(labels[entry.key], entry).text.render_as("text")
        except Exception:  # an entry type the plain style cannot format: title and year
            text = f"{entry.fields.get('title', entry.key)}, {entry.fields.get('year', '')}"
        text = " ".join(text.split())
        out[entry.key] = {"label": labels[entry.key], "text": text}
    return out


# --------------------------------------------------------------------------- library code


def _pyobject_source(path: Path, name: str) -> str:
    """The source of a top-level (or Class.method) definition, decorators included."""
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    lines = source.splitlines()
    scope = tree.body
    node = None
    for part in name.split("."):
        node = next((n for n in scope if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                        ast.ClassDef)) and n.name == part), None)
        if node is None:
            raise ValueError(f"{path.name} has no definition {name!r}")
        scope = getattr(node, "body", [])
    start = min([node.lineno] + [d.lineno for d in node.decorator_list]) - 1
    return "\n".join(lines[start:node.end_lineno])


def _include(path: Path, options: dict) -> str:
    if "pyobject" in options:
        code = _pyobject_source(path, options["pyobject"])
    else:
        lines = path.read_text(encoding="utf-8").splitlines()

        def find(key):
            marker = options[key]
            for i, ln in enumerate(lines):
                if marker in ln:
                    return i
            raise ValueError(f"{path.name} has no line containing the {key} marker {marker!r}")

        # Sphinx's literalinclude markers: start-after/start-at, end-before/end-at.
        if "start-after" in options:
            lines = lines[find("start-after") + 1:]
        elif "start-at" in options:
            lines = lines[find("start-at"):]
        if "end-before" in options:
            lines = lines[:find("end-before")]
        elif "end-at" in options:
            lines = lines[:find("end-at") + 1]
        if "lines" in options:
            keep = []
            for span in options["lines"].split(","):
                a, _, b = span.strip().partition("-")
                keep.extend(range(int(a), int(b or a) + 1))
            lines = [lines[i - 1] for i in keep if 0 < i <= len(lines)]
        code = "\n".join(lines)
    return code.strip("\n")


# --------------------------------------------------------------------------- prose


_DIRECTIVE = re.compile(r"^(?P<fence>```+|:::+)\{(?P<name>[\w:-]+)\}[ \t]*(?P<arg>[^\n]*)\n"
                        r"(?P<body>.*?)^(?P=fence)[ \t]*$", re.M | re.S)


def _split_options(body: str) -> tuple[dict, str]:
    options, rest = {}, body.splitlines()
    while rest and re.match(r"^:[\w-]+:", rest[0]):
        key, _, value = rest.pop(0)[1:].partition(":")
        value = value.strip()
        # MyST reads option values as YAML: a quoted value loses its quotes.
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        options[key] = value
    return options, "\n".join(rest)


class _Converter:
    def __init__(self, source_path: Path, bib: dict, titles: dict[str, str]):
        self.source_path = source_path
        self.bib = bib
        self.titles = titles
        self.equations: dict[str, int] = {}
        self.cited: list[str] = []

    def number_equations(self, prose: list[str]) -> None:
        for text in prose:
            for label in re.findall(r"\$\$\s*\(([\w-]+)\)", text):
                self.equations.setdefault(label, len(self.equations) + 1)

    def cite(self, keys: str) -> str:
        labels = []
        for key in (k.strip() for k in keys.split(",")):
            if key not in self.bib:
                raise ValueError(f"{self.source_path.name} cites {key!r}, not in references.bib")
            if key not in self.cited:
                self.cited.append(key)
            labels.append(self.bib[key]["label"])
        return "(" + "; ".join(labels) + ")"

    def doc(self, text: str) -> str:
        m = re.fullmatch(r"(.*?)\s*<([^>]+)>", text.strip())
        if m:
            return f"*{m.group(1)}*"
        target = (self.source_path.parent / text.strip()).resolve()
        return f"*{self.titles.get(str(target.with_suffix('')), text.strip())}*"

    def roles(self, text: str) -> str:
        text = re.sub(r"\{cite(?::\w+)?\}`([^`]+)`", lambda m: self.cite(m.group(1)), text)
        text = re.sub(r"\{eq\}`([\w-]+)`",
                      lambda m: f"({self.equations.get(m.group(1), '?')})", text)
        text = re.sub(r"\{glue(?::\w+)?\}`[^`]+`", "[…]", text)
        text = re.sub(r"\{doc\}`([^`]+)`", lambda m: self.doc(m.group(1)), text)
        text = re.sub(r"\{(?:ref|numref|term)\}`(?:([^`<]*?)\s*<[^>]+>|([^`]+))`",
                      lambda m: (m.group(1) or m.group(2)).strip(), text)
        # Display equations with a label: number them like the book does.
        text = re.sub(r"\$\$(.*?)\$\$[ \t]*\(([\w-]+)\)",
                      lambda m: f"$$\n{m.group(1).strip()}\n\\tag{{{self.equations[m.group(2)]}}}"
                                f"\n$$", text, flags=re.S)
        return text

    def directive(self, m: re.Match) -> str:
        name, arg = m.group("name"), m.group("arg").strip()
        options, body = _split_options(m.group("body"))
        if name == "literalinclude":
            path = (self.source_path.parent / arg).resolve()
            lib = path.as_posix().split("/lib/", 1)[-1]
            what = f"`{options['pyobject']}` in " if "pyobject" in options else ""
            return (f"{what}`{lib}`:\n\n```python\n{_include(path, options)}\n```")
        if name == "bibliography":
            return "\n".join(f"- [{self.bib[k]['label']}] {self.bib[k]['text']}"
                             for k in self.cited)
        if name in ("note", "warning", "tip", "important", "admonition", "seealso"):
            title = arg or name.capitalize()
            inner = self.prose(body).strip().splitlines()
            return "\n".join([f"> **{title}.**", ">"] + [f"> {ln}".rstrip() for ln in inner])
        if name in ("math",):
            return f"$$\n{body.strip()}\n$$"
        raise ValueError(f"{self.source_path.name}: no plain-Markdown form for the directive "
                         f"{{{name}}}; teach runnable_notebooks.py how to convert it")

    def prose(self, text: str) -> str:
        return _DIRECTIVE.sub(self.directive, self.roles(text))


def page_titles(book_dir) -> dict[str, str]:
    """Title (first heading) of every page under ``book_dir``, keyed by path without suffix."""
    titles = {}
    for path in Path(book_dir).rglob("*"):
        if path.suffix in (".md", ".ipynb") and "_build" not in path.parts:
            if path.suffix == ".md":
                text = path.read_text(encoding="utf-8")
            else:
                nb = nbformat.read(path, as_version=4)
                text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
            m = re.search(r"^# (.+)$", text, flags=re.M)
            if m:
                titles[str(path.resolve().with_suffix(""))] = m.group(1).strip()
    return titles


def runnable_notebook(source_path, bib: dict, install: str, titles: dict | None = None):
    """Return the runnable ``nbformat`` notebook of one chapter (a .md or an .ipynb source).

    ``install`` is what the first cell gives to ``pip install`` (a wheel URL, a path or a
    package name). Outputs are dropped; code cells are kept as they are.
    """
    import jupytext

    source_path = Path(source_path).resolve()
    chapter = jupytext.read(source_path)
    conv = _Converter(source_path, bib, titles or {})
    conv.number_equations([c.source for c in chapter.cells if c.cell_type == "markdown"])
    cells = []
    first_code = True
    for cell in chapter.cells:
        if cell.cell_type == "markdown":
            text = conv.prose(cell.source)
            cells.append(nbformat.v4.new_markdown_cell(text))
            if len(cells) == 1:
                cells.append(nbformat.v4.new_markdown_cell(INTRO))
        elif cell.cell_type == "code":
            if first_code:
                cells.append(nbformat.v4.new_code_cell(
                    "# Install the book's library, kexue, and what its chapters use.\n"
                    f"%pip install --quiet {install}"))
                cells.append(nbformat.v4.new_code_cell(SCALE_CELL))
                first_code = False
            tags = [t for t in cell.metadata.get("tags", []) if t == "parameters"]
            new = nbformat.v4.new_code_cell(cell.source)
            if tags:
                new.metadata["tags"] = tags
            cells.append(new)
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python",
                                 "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def leftover_myst(nb) -> list[str]:
    """MyST roles and directives left in a notebook's Markdown (should be none)."""
    found = []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            # Plain fenced code (library code inlined from a literalinclude) is code, not
            # MyST: a docstring's ``h_{t-1}`` must not count as a role.
            prose = re.sub(r"^(`{3,})(?!\{)[^\n]*\n.*?^\1[ \t]*$", "", cell.source,
                           flags=re.M | re.S)
            found += re.findall(r"\{[\w:-]+\}`[^`]*`|^(?:```+|:::+)\{[\w:-]+\}.*$",
                                prose, flags=re.M)
    return found


# --------------------------------------------------------------------------- Sphinx


def _is_chapter(app, docname: str) -> bool:
    return docname.count("/") == 2 and docname.startswith("book/")


def _write_notebook(app, pagename, templatename, context, doctree):
    if app.builder.format != "html" or not _is_chapter(app, pagename):
        return
    if not hasattr(app, "_runnable_bib"):
        root = Path(app.srcdir)
        app._runnable_bib = load_bibliography(root / app.config.bibtex_bibfiles[0])
        app._runnable_titles = page_titles(root / "book")
    source = Path(app.env.doc2path(pagename))
    nb = runnable_notebook(source, app._runnable_bib, app.config.runnable_install,
                           app._runnable_titles)
    out = Path(app.outdir) / NOTEBOOK_DIR / f"{pagename}.ipynb"
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out)

    pathto = context["pathto"]
    url = pathto(f"{NOTEBOOK_DIR}/{pagename}.ipynb", 1)
    for button in context.get("header_buttons", []):
        if button.get("label") == "download-buttons":
            button["buttons"].insert(0, {
                "type": "link", "url": url, "text": ".ipynb (runnable)",
                "icon": "fas fa-code", "label": "download-runnable-notebook-button",
                "tooltip": "Download this chapter as a notebook that runs on Colab or any GPU",
            })
    colab = app.config.runnable_colab or {}
    if colab.get("repository"):
        folder = colab.get("path", NOTEBOOK_DIR).strip("/")
        link = (f"https://colab.research.google.com/github/{colab['repository']}/blob/"
                f"{colab.get('branch', 'gh-pages')}/{folder}/{pagename}.ipynb")
        context.setdefault("header_buttons", []).insert(0, {
            "type": "link", "url": link, "text": "Colab", "label": "launch-colab-button",
            "tooltip": "Run this chapter on Colab", "icon": "fas fa-rocket",
        })


def _copy_wheels(app, exc):
    if exc is not None or app.builder.format != "html":
        return
    wheels = Path(app.srcdir) / app.config.runnable_wheels
    if wheels.is_dir():
        for wheel in wheels.glob("*.whl"):
            target = Path(app.outdir) / WHEEL_DIR
            target.mkdir(exist_ok=True)
            shutil.copy2(wheel, target / wheel.name)


def setup(app):
    app.add_config_value("runnable_install", "kexue", "html")
    app.add_config_value("runnable_colab", {}, "html")
    app.add_config_value("runnable_wheels", "_build/dist", "html")
    # After sphinx-book-theme has built its header buttons (priority 501).
    app.connect("html-page-context", _write_notebook, priority=600)
    app.connect("build-finished", _copy_wheels)
    return {"parallel_read_safe": True, "parallel_write_safe": False}
