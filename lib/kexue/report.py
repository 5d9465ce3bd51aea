"""The claims ledger: what each article claims, what the run measured, and whether it holds.

Every chapter declares the claims of its article once, as rows of a :class:`Claims` table:

- the claim, in a short sentence;
- the article's number or statement;
- our number, measured by the run that built the page, formatted with its unit;
- the scale it was measured at (``smoke``, ``book`` or ``full``);
- a verdict from a fixed vocabulary (:data:`VERDICTS`), *computed* from our number by a rule
  the chapter states: ``reproduced_if`` (the article's number, within a tolerance, or the
  article's ordering when the article gives no number) and ``qualitative_if`` (the direction
  holds but not the article's number). Only *not run* is declared by hand, with its reason;
- whether the notebook asserts the claim. An asserted claim whose verdict is *not reproduced*
  fails the notebook when the table is published, so the column cannot say more than the run.

:meth:`Claims.publish` displays the table and glues it under the fixed key :data:`KEY`, with the
counts under ``claims_total``, ``claims_reproduced``, ... (:data:`COUNT_KEYS`), for the book's
"What holds up" page, which pastes every chapter's table from the chapter's own executed output.

Used in: every chapter of the book, and ``book/claims.md``.
"""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import asdict, dataclass, field

import numpy as np

from kexue.viz import format_number, table

__all__ = [
    "KEY", "COUNT_KEYS", "VERDICTS", "REPRODUCED", "QUALITATIVE", "NOT_REPRODUCED", "NOT_RUN",
    "Rule", "within", "above", "below", "between", "Claim", "Claims", "ClaimsTable",
]

KEY = "claims"
"""The glue key under which every chapter publishes its claims table."""

REPRODUCED = "reproduced"
QUALITATIVE = "reproduced qualitatively"
NOT_REPRODUCED = "not reproduced"
NOT_RUN = "not run"
VERDICTS = (REPRODUCED, QUALITATIVE, NOT_REPRODUCED, NOT_RUN)
"""The fixed vocabulary of verdicts, from best to worst."""

NA_OURS = "not measured"
"""What the *Ours* column shows for a claim that was not run."""

COUNT_KEYS = {
    "total": "claims_total",
    REPRODUCED: "claims_reproduced",
    QUALITATIVE: "claims_qualitative",
    NOT_REPRODUCED: "claims_not_reproduced",
    NOT_RUN: "claims_not_run",
    "asserted": "claims_asserted",
    "scale": "claims_scale",
}
"""Glue keys of the counts that :meth:`Claims.publish` records beside the table."""

_COLOURS = {
    REPRODUCED: "#d9f2d9",
    QUALITATIVE: "#fff2c2",
    NOT_REPRODUCED: "#f8d4d4",
    NOT_RUN: "#e6e6e6",
}


def _real(value, name: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r} of type "
                        f"{type(value).__name__}.")
    value = float(value)
    if math.isnan(value):
        raise ValueError(f"{name} must not be NaN.")
    return value


@dataclass(frozen=True)
class Rule:
    """A test of our number: ``kind`` is ``within``, ``above``, ``below`` or ``between``.

    Build one with :func:`within`, :func:`above`, :func:`below` or :func:`between`. Calling it
    on a number returns whether the number passes; NaN never passes.
    """

    kind: str
    a: float
    b: float | None = None

    def __post_init__(self):
        if self.kind not in ("within", "above", "below", "between"):
            raise ValueError(f"kind must be 'within', 'above', 'below' or 'between', "
                             f"got {self.kind!r}.")
        _real(self.a, "a")
        if self.kind in ("within", "between"):
            if self.b is None:
                raise ValueError(f"b must be given for a {self.kind!r} rule, got None.")
            _real(self.b, "b")
        elif self.b is not None:
            raise ValueError(f"b must be None for an {self.kind!r} rule, got {self.b!r}.")

    def __call__(self, value) -> bool:
        x = float(value)
        if math.isnan(x):
            return False
        if self.kind == "within":
            return abs(x - self.a) <= self.b
        if self.kind == "above":
            return x > self.a
        if self.kind == "below":
            return x < self.a
        return self.a <= x <= self.b

    def describe(self, spec: str | None = None) -> str:
        """The rule in words, its numbers formatted like the claim's (``spec``)."""
        def f(v):
            return format_number(v, spec)

        if self.kind == "within":
            return f"{f(self.a)} ± {f(self.b).lstrip('+')}"
        if self.kind == "above":
            return f"> {f(self.a)}"
        if self.kind == "below":
            return f"< {f(self.a)}"
        return f"in [{f(self.a)}, {f(self.b)}]"


def within(target, tol=None, *, rel=None) -> Rule:
    """Our number is within ``tol`` of ``target`` (or within ``rel`` × |target|)."""
    target = _real(target, "target")
    if (tol is None) == (rel is None):
        raise ValueError("within() needs exactly one of tol (absolute) and rel (relative).")
    width = _real(tol, "tol") if tol is not None else _real(rel, "rel") * abs(target)
    if width < 0:
        raise ValueError(f"the tolerance must be >= 0, got {width!r}.")
    return Rule("within", target, width)


def above(threshold) -> Rule:
    """Our number is strictly greater than ``threshold`` (an ordering: ``a - b`` above 0)."""
    return Rule("above", _real(threshold, "threshold"))


def below(threshold) -> Rule:
    """Our number is strictly less than ``threshold``."""
    return Rule("below", _real(threshold, "threshold"))


def between(low, high) -> Rule:
    """Our number lies in the closed interval ``[low, high]``."""
    low, high = _real(low, "low"), _real(high, "high")
    if low > high:
        raise ValueError(f"between() needs low <= high, got low={low!r}, high={high!r}.")
    return Rule("between", low, high)


def _check_text(value, name: str, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string, got {value!r}.")
    return value.strip()


@dataclass(frozen=True)
class Claim:
    """One row of a claims table, as displayed (every field is text but ``asserted``)."""

    claim: str
    article: str
    ours: str
    scale: str
    verdict: str
    rule: str
    asserted: bool
    note: str = ""

    def __post_init__(self):
        for name in ("claim", "article", "scale"):
            _check_text(getattr(self, name), name)
        for name in ("ours", "rule", "note"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"{name} must be a string, got {getattr(self, name)!r}.")
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}.")
        if not isinstance(self.asserted, (bool, np.bool_)):
            raise TypeError(f"asserted must be a bool, got {self.asserted!r}.")
        if self.verdict == NOT_RUN and self.asserted:
            raise ValueError(f"claim {self.claim!r} was not run, so it cannot be asserted.")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, row) -> Claim:
        """Rebuild a row from :meth:`to_dict`; a missing or unknown field raises ``ValueError``."""
        if not isinstance(row, dict):
            raise TypeError(f"row must be a dict, got {type(row).__name__}.")
        names = {f for f in cls.__dataclass_fields__}
        required = names - {"note"}
        missing, unknown = required - set(row), set(row) - names
        if missing or unknown:
            raise ValueError(f"a claim row needs the fields {sorted(required)} (and optionally "
                             f"'note'); missing {sorted(missing)}, unknown {sorted(unknown)}.")
        return cls(**row)


@dataclass
class ClaimsTable:
    """The published form of a chapter's claims: HTML for the book, JSON rows for programs."""

    rows: list[Claim]
    scale: str
    article: str = ""
    _styler: object = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        from kexue import runtime

        if not isinstance(self.rows, list) or not all(isinstance(r, Claim) for r in self.rows):
            raise TypeError(f"rows must be a list of Claim rows, got {self.rows!r:.80}.")
        if self.scale not in runtime.SCALES:
            raise ValueError(f"scale must be one of {runtime.SCALES}, got {self.scale!r}.")
        if not isinstance(self.article, str):
            raise TypeError(f"article must be a string, got {self.article!r}.")

    def frame(self):
        """The rows as a ``pandas.DataFrame`` with the displayed column names."""
        import pandas as pd

        return pd.DataFrame(
            [[r.claim, r.article, r.ours, r.verdict, r.rule, "yes" if r.asserted else "no",
              r.note] for r in self.rows],
            columns=["Claim", "Article", "Ours", "Verdict", "Rule (ours)", "Asserted", "Note"],
        )

    def styler(self):
        if self._styler is None:
            frame = self.frame()
            if not frame["Note"].str.len().any():
                frame = frame.drop(columns="Note")
            caption = f"Claims of the article, measured at {self.scale} scale"
            if self.article:
                caption = f"Claims of {self.article}, measured at {self.scale} scale"
            if self.scale == "smoke":
                caption += " (smoke: a tiny run that only checks that everything executes)"
            uid = "claims-" + "".join(ch for ch in self.article if ch.isdigit())
            styler = table(frame, caption=caption, uid=uid,
                           wrap={"Claim": "16em", "Article": "9em"})
            styler = styler.map(lambda v: f"background-color: {_COLOURS.get(v, '')}",
                                subset=["Verdict"])
            self._styler = styler
        return self._styler

    def json(self) -> dict:
        return {"scale": self.scale, "article": self.article,
                "rows": [r.to_dict() for r in self.rows]}

    @classmethod
    def from_json(cls, data) -> ClaimsTable:
        """Rebuild a table from :meth:`json` (or from its JSON text)."""
        if isinstance(data, str):
            data = json.loads(data)
        if not isinstance(data, dict) or "rows" not in data or "scale" not in data:
            raise ValueError("claims JSON must be an object with 'scale' and 'rows'.")
        return cls([Claim.from_dict(r) for r in data["rows"]], data["scale"],
                   data.get("article", ""))

    def counts(self) -> dict:
        out = {"total": len(self.rows)}
        for v in VERDICTS:
            out[v] = sum(r.verdict == v for r in self.rows)
        out["asserted"] = sum(bool(r.asserted) for r in self.rows)
        out["scale"] = self.scale
        return out

    def to_html(self) -> str:
        return self.styler().to_html()

    def __str__(self) -> str:
        frame = self.frame()
        width = {c: max(len(c), *(len(str(v)) for v in frame[c])) for c in frame.columns}
        lines = ["  ".join(c.ljust(width[c]) for c in frame.columns)]
        lines += ["  ".join(str(v).ljust(width[c]) for c, v in zip(frame.columns, row))
                  for row in frame.itertuples(index=False)]
        return "\n".join(lines)

    def _repr_mimebundle_(self, include=None, exclude=None):
        return {"text/html": self.to_html(), "text/plain": str(self),
                "application/json": self.json()}


class Claims:
    """The claims of one article, declared by its chapter, one :meth:`add` per claim.

    Example::

        claims = report.Claims("kexue.fm/archives/4695")
        claims.add("The CRF beats the per-token softmax in word F1",
                   article="CRF > softmax", ours=crf_f1 - softmax_f1, spec="{:+.2%}",
                   reproduced_if=report.above(0), asserted=True)
        claims.publish()
    """

    def __init__(self, article: str, scale: str | None = None):
        from kexue import runtime

        self.article = _check_text(article, "article")
        if scale is None:
            scale = runtime.scale()
        if scale not in runtime.SCALES:
            raise ValueError(f"scale must be one of {runtime.SCALES}, got {scale!r}.")
        self.scale = scale
        self.rows: list[Claim] = []

    def add(
        self,
        claim: str,
        *,
        article: str,
        ours=None,
        spec: str | None = None,
        unit: str = "",
        reproduced_if: Rule | None = None,
        qualitative_if: Rule | None = None,
        asserted: bool = False,
        not_run: str | None = None,
        note: str = "",
    ) -> Claim:
        """Declare one claim and compute its verdict; returns the row.

        Parameters
        ----------
        claim:
            The claim in a short sentence.
        article:
            The article's number or statement (text, as the article gives it).
        ours:
            Our measured number (or a bool for a yes/no claim). ``None`` only with ``not_run``.
        spec, unit:
            How ``ours`` and the rules' numbers are formatted (``"{:.2%}"``), and a unit
            appended to ``ours`` (``" s"``).
        reproduced_if:
            The rule under which our number reproduces the article's: a tolerance around the
            article's number (:func:`within`), or the article's ordering (:func:`above` ...)
            when the article states no number. A bool ``ours`` needs no rule: True reproduces.
        qualitative_if:
            The weaker rule under which the claim holds in direction but not in number.
        asserted:
            Whether the notebook asserts the claim: :meth:`publish` then fails when the verdict
            is *not reproduced*.
        not_run:
            Why the claim is not measured here (e.g. "needs the article's BERT weights").
        note:
            A short remark shown in the table.
        """
        claim = _check_text(claim, "claim")
        article = _check_text(article, "article")
        if not isinstance(unit, str) or not isinstance(note, str):
            raise TypeError(f"unit and note must be strings, got {unit!r} and {note!r}.")
        if not isinstance(asserted, (bool, np.bool_)):
            raise TypeError(f"asserted must be a bool, got {asserted!r}.")
        for name, rule in (("reproduced_if", reproduced_if), ("qualitative_if", qualitative_if)):
            if rule is not None and not isinstance(rule, Rule):
                raise TypeError(f"{name} must be a kexue.report rule (within, above, below, "
                                f"between), got {rule!r}.")
        if not_run is not None:
            _check_text(not_run, "not_run")
            if ours is not None or reproduced_if or qualitative_if:
                raise ValueError(f"claim {claim!r}: not_run excludes ours and the rules.")
            row = Claim(claim, article, NA_OURS, self.scale,
                        NOT_RUN, "", bool(asserted), note or not_run)
            self._append(row)
            return row
        if ours is None:
            raise ValueError(f"claim {claim!r} has no measured value: give ours=..., or "
                             f"not_run='why it is not measured'.")
        if isinstance(ours, (bool, np.bool_)):
            if reproduced_if is not None or qualitative_if is not None:
                raise ValueError(f"claim {claim!r}: a yes/no result takes no rule.")
            verdict = REPRODUCED if ours else NOT_REPRODUCED
            row = Claim(claim, article, "yes" if ours else "no", self.scale, verdict,
                        "yes", bool(asserted), note)
            self._append(row)
            return row
        if isinstance(ours, np.ndarray) and ours.ndim == 0:
            ours = ours.item()
        if not isinstance(ours, numbers.Real):
            raise TypeError(f"claim {claim!r}: ours must be a real number or a bool, got "
                            f"{ours!r} of type {type(ours).__name__}.")
        if reproduced_if is None and qualitative_if is None:
            raise ValueError(f"claim {claim!r} needs a rule: reproduced_if and/or "
                             f"qualitative_if (within, above, below, between).")
        if reproduced_if is not None and reproduced_if(ours):
            verdict = REPRODUCED
        elif qualitative_if is not None and qualitative_if(ours):
            verdict = QUALITATIVE if reproduced_if is not None else REPRODUCED
        else:
            verdict = NOT_REPRODUCED
        rules = []
        if reproduced_if is not None:
            rules.append(reproduced_if.describe(spec))
        if qualitative_if is not None:
            word = "qualitatively " if reproduced_if is not None else ""
            rules.append(f"{word}{qualitative_if.describe(spec)}")
        shown = format_number(ours, spec) + unit
        row = Claim(claim, article, shown, self.scale, verdict, "; ".join(rules),
                    bool(asserted), note)
        self._append(row)
        return row

    def _append(self, row: Claim) -> None:
        if any(r.claim == row.claim for r in self.rows):
            raise ValueError(f"claim {row.claim!r} is declared twice.")
        self.rows.append(row)

    def table(self) -> ClaimsTable:
        """The claims as a :class:`ClaimsTable` (displays as the styled table)."""
        if not self.rows:
            raise ValueError("no claims declared: call add() for every claim of the article.")
        return ClaimsTable(list(self.rows), self.scale, self.article)

    def failed_assertions(self) -> list[Claim]:
        """Asserted claims whose verdict is *not reproduced*."""
        return [r for r in self.rows if r.asserted and r.verdict == NOT_REPRODUCED]

    def publish(self) -> None:
        """Display the table, glue it under :data:`KEY` and its counts under :data:`COUNT_KEYS`.

        Raises ``AssertionError`` naming every asserted claim that is not reproduced. Returns
        nothing, so that the table is shown once as the last line of a cell (:meth:`table`
        gives the table object).
        """
        from kexue.runtime import glue

        tab = self.table()
        glue(KEY, tab, display=True)
        for name, value in tab.counts().items():
            glue(COUNT_KEYS[name], value, display=False)
        failed = self.failed_assertions()
        if failed:
            raise AssertionError("asserted claims not reproduced: " + "; ".join(
                f"{r.claim!r} (ours {r.ours}, rule {r.rule})" for r in failed))

