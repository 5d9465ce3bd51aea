"""The claims ledger (kexue.report) and the table formatter (kexue.viz)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from kexue import report, viz
from kexue.report import NOT_REPRODUCED, NOT_RUN, QUALITATIVE, REPRODUCED


def _claims():
    return report.Claims("kexue.fm/archives/1", scale="book")


# --- rules -------------------------------------------------------------------------------


def test_within_absolute_and_relative():
    assert report.within(0.5, 0.1)(0.59) and report.within(0.5, 0.1)(0.41)
    assert not report.within(0.5, 0.1)(0.61)
    assert report.within(200.0, rel=0.1)(219) and not report.within(200.0, rel=0.1)(221)
    assert report.within(-2.0, rel=0.5)(-1.0)


def test_orderings_and_interval():
    assert report.above(0)(1e-9) and not report.above(0)(0.0)
    assert report.below(1)(0.999) and not report.below(1)(1.0)
    assert report.between(1, 2)(1) and report.between(1, 2)(2) and not report.between(1, 2)(2.1)


def test_nan_never_passes_a_rule():
    for rule in (report.within(0, 1e9), report.above(-1e9), report.below(1e9),
                 report.between(-1e9, 1e9)):
        assert not rule(math.nan)


@pytest.mark.parametrize("call, match", [
    (lambda: report.within(1.0), "exactly one of tol"),
    (lambda: report.within(1.0, 0.1, rel=0.1), "exactly one of tol"),
    (lambda: report.within(1.0, -0.1), ">= 0"),
    (lambda: report.within("1", 0.1), "target must be a real number"),
    (lambda: report.above(math.nan), "threshold must not be NaN"),
    (lambda: report.above(True), "threshold must be a real number"),
    (lambda: report.between(2, 1), "low <= high"),
    (lambda: report.Rule("roughly", 1.0), "kind must be"),
])
def test_bad_rules_raise(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


# --- verdicts ----------------------------------------------------------------------------


def test_tolerance_verdicts():
    c = _claims()
    kw = dict(article="0.5 pt", spec="{:+.2f}", reproduced_if=report.within(0.5, 0.2),
              qualitative_if=report.above(0))
    assert c.add("close", ours=0.6, **kw).verdict == REPRODUCED
    assert c.add("right sign", ours=1.2, **kw).verdict == QUALITATIVE
    assert c.add("wrong sign", ours=-0.1, **kw).verdict == NOT_REPRODUCED
    assert c.add("diverged", ours=math.nan, **kw).verdict == NOT_REPRODUCED


def test_ordering_alone_is_a_full_reproduction():
    # The article claims a direction without a number: the direction is the whole claim.
    c = _claims()
    assert c.add("a beats b", article="a > b", ours=0.01,
                 qualitative_if=report.above(0)).verdict == REPRODUCED
    assert c.add("b beats a", article="b > a", ours=0.01,
                 reproduced_if=report.below(0)).verdict == NOT_REPRODUCED


def test_yes_no_claims_and_not_run():
    c = _claims()
    assert c.add("learns the grammar", article="yes", ours=np.bool_(True)).verdict == REPRODUCED
    assert c.add("never fails", article="yes", ours=False).verdict == NOT_REPRODUCED
    row = c.add("BERT-base", article="96.1%", not_run="needs the article's BERT weights")
    assert row.verdict == NOT_RUN and row.ours == report.NA_OURS
    assert "BERT weights" in row.note


def test_numbers_are_formatted_with_the_claims_spec_and_unit():
    c = _claims()
    row = c.add("fast", article="2x", ours=np.float32(1.8349), spec="{:.2f}", unit="x",
                reproduced_if=report.within(2.0, rel=0.1), qualitative_if=report.above(1))
    assert row.ours == "1.83x"
    assert row.rule == "2.00 ± 0.20; qualitatively > 1.00"
    assert row.scale == "book"


@pytest.mark.parametrize("kwargs, match", [
    (dict(article="x"), "no measured value"),
    (dict(article="x", ours=1.0), "needs a rule"),
    (dict(article="x", ours="0.9", reproduced_if=report.above(0)), "real number or a bool"),
    (dict(article="x", ours=True, reproduced_if=report.above(0)), "takes no rule"),
    (dict(article="x", ours=1.0, reproduced_if=lambda v: True), "kexue.report rule"),
    (dict(article="", ours=1.0, reproduced_if=report.above(0)), "article must be"),
    (dict(article="x", not_run="weights", ours=1.0), "not_run excludes"),
    (dict(article="x", not_run=""), "not_run must be"),
    (dict(article="x", ours=1.0, reproduced_if=report.above(0), asserted="yes"), "asserted"),
    (dict(article="x", not_run="weights", asserted=True), "cannot be asserted"),
])
def test_bad_claims_raise(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        _claims().add("a claim", **kwargs)


def test_a_claim_is_declared_once_and_a_table_needs_rows():
    c = _claims()
    c.add("a", article="x", ours=True)
    with pytest.raises(ValueError, match="declared twice"):
        c.add("a", article="x", ours=True)
    with pytest.raises(ValueError, match="no claims declared"):
        _claims().table()


def test_bad_table_arguments():
    with pytest.raises(ValueError, match="scale must be one of"):
        report.Claims("kexue.fm/archives/1", scale="huge")
    with pytest.raises(ValueError, match="article must be"):
        report.Claims("  ")


def test_unknown_verdict_and_missing_fields_raise():
    row = _claims().add("a", article="x", ours=True).to_dict()
    with pytest.raises(ValueError, match="verdict must be one of"):
        report.Claim.from_dict({**row, "verdict": "sort of"})
    del row["ours"]
    with pytest.raises(ValueError, match=r"missing \['ours'\]"):
        report.Claim.from_dict(row)
    with pytest.raises(ValueError, match=r"unknown \['colour'\]"):
        report.Claim.from_dict({**_claims().add("b", article="x", ours=True).to_dict(),
                                "colour": "red"})


def test_asserted_claims_that_fail_stop_publish(monkeypatch):
    glued = {}
    monkeypatch.setattr("kexue.runtime.glue", lambda k, v, display=False: glued.update({k: v}))
    c = _claims()
    c.add("holds", article="a > b", ours=1.0, reproduced_if=report.above(0), asserted=True)
    c.add("fails but not asserted", article="a > b", ours=-1.0, reproduced_if=report.above(0))
    assert c.publish() is None
    assert glued[report.KEY].rows == c.table().rows
    assert glued["claims_total"] == 2 and glued["claims_reproduced"] == 1
    assert glued["claims_not_reproduced"] == 1 and glued["claims_asserted"] == 1
    assert glued["claims_scale"] == "book"
    c.add("fails and asserted", article="a > b", ours=-1.0, reproduced_if=report.above(0),
          asserted=True)
    with pytest.raises(AssertionError, match="fails and asserted"):
        c.publish()


# --- the published table -----------------------------------------------------------------


def test_glued_table_round_trips_through_json():
    c = _claims()
    c.add("close", article="0.5", ours=0.6, spec="{:.2f}", reproduced_if=report.within(0.5, 0.2))
    c.add("yes", article="yes", ours=True, asserted=True)
    c.add("skipped", article="96%", not_run="needs weights")
    tab = c.table()
    bundle = tab._repr_mimebundle_()
    text = json.dumps(bundle["application/json"])  # what the notebook file stores
    again = report.ClaimsTable.from_json(text)
    assert again.rows == tab.rows and again.scale == "book"
    assert again.counts() == tab.counts() == {
        "total": 3, REPRODUCED: 2, QUALITATIVE: 0, NOT_REPRODUCED: 0, NOT_RUN: 1,
        "asserted": 1, "scale": "book"}
    with pytest.raises(ValueError, match="'scale' and 'rows'"):
        report.ClaimsTable.from_json({"rows": []})


def test_html_shows_every_row_in_full_with_the_verdict_coloured():
    c = _claims()
    long = "a claim whose statement is long enough that pandas would usually truncate it " * 2
    c.add(long.strip(), article="x", ours=True)
    c.add("not run", article="x", not_run="needs weights")
    html = c.table()._repr_mimebundle_()["text/html"]
    assert long.strip() in html and "needs weights" in html
    assert "#d9f2d9" in html and "#e6e6e6" in html  # reproduced and not-run colours
    assert 'id="T_claims-1"' in html  # a stable id per article, the same on every run
    assert "measured at book scale" in html
    text = c.table()._repr_mimebundle_()["text/plain"]
    assert "not run" in text.splitlines()[2]


def test_smoke_tables_say_so():
    c = report.Claims("kexue.fm/archives/1", scale="smoke")
    c.add("a", article="x", ours=True)
    assert "smoke: a tiny run" in c.table().to_html()


# --- viz.table and format_number ---------------------------------------------------------


@pytest.mark.parametrize("value, spec, expected", [
    (548.0, None, "548"), (0.5, None, "0.5"), (0.500000, None, "0.5"), (12345, None, "12,345"),
    (np.int64(1000), None, "1,000"), (3.14159, None, "3.142"), (1.2e-7, None, "1.2e-07"),
    (2.5e7, None, "2.5e+07"), (1234.5, None, "1,234"), (None, None, "—"), (math.nan, None, "—"),
    (True, None, "yes"), ("text", None, "text"), (0.1234, "{:.1%}", "12.3%"),
    (0.1234, ".2f", "0.12"), (np.float32(0.25), "{:.2f}", "0.25"), (math.inf, None, "∞"),
])
def test_format_number(value, spec, expected):
    assert viz.format_number(value, spec) == expected


def test_format_number_rejects_other_objects():
    with pytest.raises(TypeError, match="must be a number"):
        viz.format_number([1, 2])
    with pytest.raises(TypeError, match="format string"):
        viz.format_number(1.0, 3)


def test_table_hides_the_index_and_formats_each_column():
    frame = pd.DataFrame({"F1": [0.91234, 0.9], "steps": [1000, 20]}, index=["crf", "softmax"])
    frame.index.name = "head"
    html = viz.table(frame, {"F1": "{:.2%}"}, caption="Results").to_html()
    assert "91.23%" in html and "1,000" in html and ">head<" in html and "crf" in html
    assert "Results" in html and 'id="T_results"' in html
    assert "row_heading" not in html  # no pandas index column


def test_table_is_identical_on_two_runs():
    frame = pd.DataFrame({"a": [1.0, 2.0]})
    assert viz.table(frame, caption="x").to_html() == viz.table(frame, caption="x").to_html()


def test_table_bad_input():
    with pytest.raises(TypeError, match="DataFrame"):
        viz.table([1, 2])
    with pytest.raises(ValueError, match="does not have"):
        viz.table(pd.DataFrame({"a": [1]}), {"b": ".2f"})
    with pytest.raises(ValueError, match="wrap names column"):
        viz.table(pd.DataFrame({"a": [1]}), wrap={"b": "10em"})
