"""Structure of the book: every notebook follows the conventions of DESIGN.md.

These checks read the jupytext sources under book/ and run in well under a second;
the notebooks themselves are executed by nbmake in `make test`.
"""

from __future__ import annotations

import re
from pathlib import Path

import jupytext
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
NOTEBOOKS = sorted(p for p in BOOK.glob("*/*.md"))


def _toc_files(node) -> list[str]:
    out = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("file", "root"):
                out.append(value)
            else:
                out.extend(_toc_files(value))
    elif isinstance(node, list):
        for item in node:
            out.extend(_toc_files(item))
    return out


def _bib_keys() -> set[str]:
    text = (ROOT / "references.bib").read_text(encoding="utf-8")
    return set(re.findall(r"^@\w+\{([^,\s]+),", text, flags=re.M))


def _read(path: Path):
    return jupytext.read(path)


def _code(nb) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "code"]


def _prose(nb) -> str:
    return "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks under book/<part>/"


def test_toc_lists_exactly_the_notebooks():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    listed = _toc_files(toc)
    assert len(listed) == len(set(listed)), f"duplicate toc entries: {listed}"
    for entry in listed:
        assert (ROOT / f"{entry}.md").exists(), f"_toc.yml lists {entry}, which does not exist"
    on_disk = {str(p.relative_to(ROOT).with_suffix("")) for p in NOTEBOOKS}
    pages = {"book/intro", "book/claims"}
    assert on_disk == set(listed) - pages, (
        f"not in _toc.yml: {sorted(on_disk - set(listed))}; "
        f"in _toc.yml but missing: {sorted(set(listed) - on_disk - pages)}"
    )


def test_claims_page_is_second_and_pastes_every_chapter():
    """book/claims.md follows the introduction and pastes each chapter's table and counts."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    listed = _toc_files(toc)
    assert listed[:2] == ["book/intro", "book/claims"], listed[:3]
    page = (BOOK / "claims.md").read_text(encoding="utf-8")
    pasted = re.findall(r"```\{glue\} claims\n:doc: (\S+)\.md\n```", page)
    chapters = [e[len("book/"):] for e in listed[2:]]
    assert pasted == chapters, f"claims.md pastes {pasted}, the toc lists {chapters}"
    for rel in chapters:
        for key in ("claims_total", "claims_reproduced", "claims_qualitative",
                    "claims_not_reproduced", "claims_not_run", "claims_asserted", "claims_scale"):
            assert f"`{rel}.md::{key}:" in page, f"summary row of {rel} lacks {key}"
        assert re.search(rf"^\| \{{doc\}}`[^`<]+<{re.escape(rel)}>` \|", page, flags=re.M), (
            f"the summary table of claims.md has no row linking {rel} (short title <path>)")
        assert f"### {{doc}}`{rel}`" in page, f"claims.md has no section for {rel}"
        archive = re.search(r"kexue\.fm/archives/(\d+)", (BOOK / f"{rel}.md").read_text()).group(1)
        assert f"kexue.fm/archives/{archive}" in page, f"claims.md names the wrong article for {rel}"


def test_equation_labels_are_unique_across_the_book():
    """Sphinx equation labels are global: two chapters may not both define ``(update)``."""
    seen: dict[str, str] = {}
    for path in NOTEBOOKS:
        prose = _prose(_read(path))
        for label in re.findall(r"\$\$\s*\(([\w-]+)\)", prose):
            assert label not in seen, f"equation label {label!r} in {path.name} and {seen[label]}"
            seen[label] = path.name


def test_bibliography_file_parses():
    keys = _bib_keys()
    assert keys, "references.bib holds no entries"


def _bib_entries() -> dict[str, str]:
    text = (ROOT / "references.bib").read_text(encoding="utf-8")
    parts = re.split(r"(?=^@\w+\{)", text, flags=re.M)
    return {re.match(r"@\w+\{([^,\s]+),", p).group(1): p for p in parts if p.startswith("@")}


def _field(entry: str, name: str) -> str | None:
    m = re.search(rf"^\s*{name}\s*=\s*\{{(.*)\}},?\s*$", entry, flags=re.M)
    return m.group(1) if m else None


def test_author_year_labels_are_unique():
    """Two works of one author (group) and year carry 2018a / 2018b, in the text and the list."""
    seen: dict[tuple, str] = {}
    for key, entry in _bib_entries().items():
        authors = [a.strip() for a in (_field(entry, "author") or "").split(" and ")]
        first = authors[0].split(",")[0].strip()
        label = (first, min(len(authors), 3), _field(entry, "year"))
        assert label not in seen, (
            f"{key} and {seen[label]} would both be cited as {first}, {label[2]}: give their "
            "years the suffixes a, b in references.bib")
        seen[label] = key


def test_titles_keep_their_capitals():
    """Titles are wrapped in an extra pair of braces so that BibTeX styles keep their case."""
    for key, entry in _bib_entries().items():
        title = _field(entry, "title")
        assert title and title.startswith("{") and title.endswith("}"), (
            f"protect the title of {key} with an extra pair of braces: {title!r}")
        assert "$" not in title, f"{key}: MathJax does not render TeX in the bibliography"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(BOOK)))
class TestNotebook:
    def test_front_matter(self, path):
        text = path.read_text(encoding="utf-8")
        assert text.startswith("---\n"), "missing YAML front matter"
        front = yaml.safe_load(text.split("---\n", 2)[1])
        assert front["jupytext"]["text_representation"]["format_name"] == "myst"
        assert front["kernelspec"]["name"] == "python3"
        assert front["kernelspec"]["language"] == "python"

    def test_slug_is_kebab_case(self, path):
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", path.stem), path.stem

    def test_source_line_and_title(self, path):
        nb = _read(path)
        first = nb.cells[0]
        assert first.cell_type == "markdown" and first.source.lstrip().startswith("# "), (
            "the first cell must be the title"
        )
        assert re.search(r"kexue\.fm/archives/\d+", _prose(nb)), "no kexue.fm/archives/<id> source"

    def test_one_parameters_cell_that_picks_by_scale(self, path):
        nb = _read(path)
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, f"expected exactly one cell tagged parameters, got {len(tagged)}"
        assert tagged[0].cell_type == "code"
        assert "pick(" in tagged[0].source, "budget knobs must come from kexue.runtime.pick"

    def test_parameters_cell_declares_the_work(self, path):
        """The parameters cell states the dominant work at every scale, for the full estimate."""
        nb = _read(path)
        params = next(c.source for c in nb.cells if "parameters" in c.metadata.get("tags", []))
        assert re.search(r"\bwork\(", params), (
            "declare the chapter's dominant work in the parameters cell with "
            "runtime.work(smoke=..., book=..., full=...), its unit in a comment")
        for cell in nb.cells:
            if cell.cell_type == "code" and "parameters" not in cell.metadata.get("tags", []):
                assert not re.search(r"runtime\.work\(", cell.source), (
                    "only the parameters cell declares the work:\n" + cell.source)

    def test_only_the_parameters_cell_reads_the_scale(self, path):
        nb = _read(path)
        for cell in nb.cells:
            if cell.cell_type != "code" or "parameters" in cell.metadata.get("tags", []):
                continue
            assert "pick(" not in cell.source and "KEXUE_SCALE" not in cell.source, (
                "only the parameters cell may branch on the scale:\n" + cell.source
            )

    def test_banner_first(self, path):
        code = _code(_read(path))
        assert code and "banner()" in code[0], "the first code cell prints runtime.banner()"

    def test_asserts_results(self, path):
        code = "\n".join(_code(_read(path)))
        assert re.search(r"^\s*assert\s", code, flags=re.M), "no assert of a result"

    def test_citations_exist_and_bibliography(self, path):
        prose = _prose(_read(path))
        cited = set()
        for group in re.findall(r"\{cite(?::\w+)?\}`([^`]+)`", prose):
            cited.update(k.strip() for k in group.split(","))
        assert cited, "the notebook cites nothing"
        missing = cited - _bib_keys()
        assert not missing, f"cited but not in references.bib: {sorted(missing)}"
        assert re.search(r"```\{bibliography\}\s*\n:filter: docname in docnames", prose), (
            "needs a filtered bibliography"
        )

    def test_glue_keys_are_glued(self, path):
        nb = _read(path)
        used = set(re.findall(r"\{glue(?::\w+)?\}`([A-Za-z0-9_]+)", _prose(nb)))
        code = "\n".join(_code(nb))
        glued = set(re.findall(r"""glue\(\s*["']([A-Za-z0-9_]+)["']""", code))
        if "publish_run_time()" in code:
            glued |= {"run_seconds", "run_scale", "full_work_ratio", "full_estimate_minutes",
                      "full_work_text"}
        assert not used - glued, f"glue keys used in the prose but never glued: {used - glued}"

    def test_glue_goes_through_kexue(self, path):
        code = "\n".join(_code(_read(path)))
        assert "from myst_nb import glue" not in code, (
            "use kexue.runtime.glue, which turns NumPy scalars into numbers myst-nb can format"
        )

    def test_publishes_its_claims_table(self, path):
        """Every chapter declares its article's claims with kexue.report and publishes them."""
        code = "\n".join(_code(_read(path)))
        assert "report.Claims(" in code, "declare the article's claims with kexue.report.Claims"
        assert re.search(r"\.add\(", code), "the claims table has no rows"
        assert re.search(r"\w+\.publish\(\)", code), "publish the claims table (glue key 'claims')"
        assert "glue(\"claims\"" not in code, "glue the claims only through Claims.publish()"

    def test_run_time_section_states_only_the_runs_time(self, path):
        """The run-time section glues the run's own time: no number of seconds typed by hand."""
        prose = _prose(_read(path))
        m = re.search(r"^## Run time\s*$(.*?)(?=^## |\Z)", prose, flags=re.M | re.S)
        assert m, "no '## Run time' section"
        text = re.sub(r"\{glue(?::\w+)?\}`[^`]*`", "GLUED", m.group(1))
        typed = re.findall(r"\d[\d,.]*\s*(?:s|sec|seconds?|min|minutes?|h|hours?)\b", text)
        assert not typed, f"hand-typed times in the run-time section: {typed}"
        code = "\n".join(_code(_read(path)))
        assert "runtime.publish_run_time()" in code, "glue the run's time with publish_run_time()"
        assert re.search(r"\{glue(?::text)?\}`full_estimate_minutes\b", m.group(1)), (
            "the run-time section states the full-scale estimate ({glue:text}"
            "`full_estimate_minutes:,.0f` minutes), glued by publish_run_time()")

    def test_no_parameter_name_stands_for_its_value_in_prose(self, path):
        """`width` units reads as a variable name where the reader wants a number: glue it."""
        nb = _read(path)
        params = next(c.source for c in nb.cells if "parameters" in c.metadata.get("tags", []))
        names = set()
        for line in params.splitlines():
            lhs = line.split("#", 1)[0].split("=", 1)
            if len(lhs) == 2 and "==" not in line:
                names.update(n.strip() for n in lhs[0].split(",") if n.strip().isidentifier())
        names -= {"smoke", "book", "full"}  # a pick()/work() keyword on its own line: a scale
        prose = re.sub(r"```.*?```", "", _prose(nb), flags=re.S)
        alone = sorted(set(re.findall(r"(?<![\w{}])`([A-Za-z_]\w*)`", prose)) & names)
        assert not alone, (
            f"parameter names standing for their values in the prose: {alone}; glue the values "
            "(or name the code that takes them, e.g. `CRF(lr_multiplier=...)`)")

    def test_results_tables_go_through_the_formatting_helper(self, path):
        """A cell that builds a pandas table shows it with kexue.viz.table, not raw pandas."""
        for source in _code(_read(path)):
            if not re.search(r"\bpd\.(DataFrame|Series)\(|\.to_frame\(", source):
                continue
            lines = [ln for ln in source.strip().splitlines() if ln.strip()]
            last = lines[-1].strip() if lines else ""
            shown_raw = re.fullmatch(r"[A-Za-z_][\w.]*(\.T|\.round\(\d*\))?", last)
            assert not shown_raw, (
                f"the cell ends by showing {last!r} as a raw pandas object; show results with "
                f"kexue.viz.table(...):\n{source}")
            assert "display(" not in source or "table(" in source, (
                f"display a results table through kexue.viz.table:\n{source}")

    def test_no_code_or_labels_in_headings(self, path):
        for line in _prose(_read(path)).splitlines():
            if line.startswith("#"):
                assert "`" not in line and "{" not in line, f"raw code or role in a heading: {line}"

    def test_equation_references_resolve(self, path):
        prose = _prose(_read(path))
        labels = set(re.findall(r"\$\$\s*\(([\w-]+)\)", prose))
        refs = set(re.findall(r"\{eq\}`([\w-]+)`", prose))
        assert labels, "no numbered equation"
        assert not refs - labels, f"references to undefined equations: {refs - labels}"

    def test_cross_references_survive_conversion_to_ipynb(self, path):
        # A link to "other.md" breaks once the page is built from an executed .ipynb copy.
        links = re.findall(r"\]\(([^)#\s]+\.md)(?:#[^)]*)?\)", _prose(_read(path)))
        assert not links, f"link chapters with {{doc}}`title <slug>`, not to .md files: {links}"

    def test_literalincludes_exist(self, path):
        prose = _prose(_read(path))
        includes = re.findall(r"```\{literalinclude\}\s+(\S+)", prose)
        assert includes, "no library code shown with literalinclude"
        for rel in includes:
            assert (path.parent / rel).resolve().is_file(), f"literalinclude of a missing file: {rel}"
