"""Sphinx extension of the book: bibliography labels that match the in-text citations.

The chapters cite in author-year form ("Su, 2018a"); by default the per-page bibliography is
numbered [1], [2], ..., so a reader cannot match a citation to its entry. This registers the
pybtex formatting style ``author_year_plain``: pybtex's ``plain`` style whose labels are
"Author, year", with the same names as the in-text citations (one author: "Su"; two:
"Kingma and Ba"; more: "Vaswani et al."). Two works of one author in one year carry
"2018a" / "2018b" in their ``year`` field in references.bib, so text and list agree.
"""

from __future__ import annotations

from pybtex.plugin import register_plugin
from pybtex.style.formatting.plain import Style as PlainStyle
from pybtex.style.labels import BaseLabelStyle


def _last(person) -> str:
    from pybtex.richtext import Text

    parts = person.rich_prelast_names + person.rich_last_names
    return str(Text(*parts).join(" ") if len(parts) > 1 else parts[0]).replace("{", "").replace(
        "}", "")


class AuthorYearLabels(BaseLabelStyle):
    """Labels "Su, 2018a", "Kingma and Ba, 2015", "Vaswani et al., 2017"."""

    def format_labels(self, sorted_entries):
        for entry in sorted_entries:
            persons = entry.persons.get("author") or entry.persons.get("editor") or []
            names = [_last(p) for p in persons]
            if not names:
                who = entry.fields.get("title", entry.key)
            elif len(names) == 1:
                who = names[0]
            elif len(names) == 2:
                who = f"{names[0]} and {names[1]}"
            else:
                who = f"{names[0]} et al."
            yield f"{who}, {entry.fields.get('year', 'n.d.')}"


class AuthorYearPlain(PlainStyle):
    default_label_style = AuthorYearLabels


def setup(app):
    register_plugin("pybtex.style.formatting", "author_year_plain", AuthorYearPlain)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
