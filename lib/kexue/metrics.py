"""Scores of predictions against references, by task.

- multi-label classification: micro/macro F1 and exact match of label sets;
- generated text: keyword-set F1, ROUGE-L and BLEU at character level.

Plain NumPy/Python on already-decoded outputs (no Keras): these score what a model produced,
they are not training losses.
"""

from __future__ import annotations

import numpy as np

from kexue._checks import as_array, check_shape

# ------------------------------------------------------------------ multi-label classification


def _label_sets(y_true, y_pred, pred_name="y_pred"):
    """Both as boolean ``(N, n)`` arrays of the same shape, values checked to be 0/1."""
    sizes: dict = {}
    out = []
    for name, value in (("y_true", y_true), (pred_name, y_pred)):
        arr = as_array(value, name)
        check_shape(arr, name, ("N", "n"), sizes)
        if name == "y_true" or pred_name == "y_pred":
            if not np.isin(arr, (0, 1)).all():
                raise ValueError(f"{name} must hold only 0/1 or booleans (multi-hot label sets), "
                                 f"got values from {arr.min()!r} to {arr.max()!r}.")
            arr = arr.astype(bool)
        out.append(arr)
    return out


def multilabel_scores(y_true, y_pred) -> dict:
    """Micro and macro F1, precision, recall and exact match of predicted label sets.

    ``y_true``, ``y_pred``: 0/1 (or boolean) arrays ``(N, n)``, one row per example, one column
    per class. Micro scores pool the true and false positives of all classes: precision
    ``TP / (TP + FP)``, recall ``TP / (TP + FN)``, F1 ``2 TP / (2 TP + FP + FN)``. Macro F1 is
    the mean over classes of each class's F1, over the classes that occur in ``y_true`` or
    ``y_pred`` (a class absent from both has no F1). Exact match is the share of rows whose
    predicted set equals the true set. Undefined ratios (nothing predicted) are 0.

    Returns a dict with ``micro_f1``, ``micro_precision``, ``micro_recall``, ``macro_f1``,
    ``exact_match`` (floats in [0, 1]).

    Used in: book/sequence/multilabel-softmax.md
    """
    t, p = _label_sets(y_true, y_pred)
    tp = (t & p).sum(axis=0).astype(float)
    fp = (~t & p).sum(axis=0).astype(float)
    fn = (t & ~p).sum(axis=0).astype(float)

    def ratio(a, b):
        return float(a / b) if b > 0 else 0.0

    seen = (tp + fp + fn) > 0
    per_class = 2 * tp[seen] / (2 * tp[seen] + fp[seen] + fn[seen])
    return {
        "micro_f1": ratio(2 * tp.sum(), 2 * tp.sum() + fp.sum() + fn.sum()),
        "micro_precision": ratio(tp.sum(), tp.sum() + fp.sum()),
        "micro_recall": ratio(tp.sum(), tp.sum() + fn.sum()),
        "macro_f1": float(per_class.mean()) if per_class.size else 0.0,
        "exact_match": float(np.mean((t == p).all(axis=1))) if t.shape[0] else 0.0,
    }


def best_threshold(y_true, scores) -> tuple[float, float]:
    """The threshold on ``scores`` that maximises the micro F1 of ``scores > threshold``.

    Exact, not a grid: all scores are sorted in decreasing order, and a cut after the m-th
    largest predicts those m entries, with micro F1 ``2 TP_m / (m + P)`` (``P`` true positives
    in all); the best cut over every m (ties in the scores kept together) is turned into the
    threshold half-way between the last predicted and the first unpredicted score.
    ``y_true``: 0/1 ``(N, n)``; ``scores``: real ``(N, n)`` (logits or probabilities).

    Returns ``(threshold, micro_f1)``. Tune on a validation split, score on a test split.

    Used in: book/sequence/multilabel-softmax.md
    """
    t, s = _label_sets(y_true, scores, pred_name="scores")
    s = s.astype(float).ravel()
    if not np.isfinite(s).all():
        raise ValueError("scores must hold finite values, got NaN or infinity.")
    order = np.argsort(-s, kind="stable")
    s_sorted, hits = s[order], t.ravel()[order]
    tp = np.cumsum(hits)
    m = np.arange(1, s.size + 1)
    ends = np.append(s_sorted[1:] < s_sorted[:-1], True)     # cut only between distinct scores
    f1 = np.where(ends, 2 * tp / (m + hits.sum()), -1.0)
    best = int(np.argmax(f1))
    if best + 1 < s.size:
        threshold = float((s_sorted[best] + s_sorted[best + 1]) / 2)
    else:
        threshold = float(s_sorted[-1] - 1.0)
    return threshold, float(f1[best])


# --- generated text: keyword F1, ROUGE-L and BLEU at character level

import collections as _collections  # noqa: E402
import math as _math  # noqa: E402

from kexue._checks import check_int as _check_int  # noqa: E402
from kexue._checks import describe as _describe  # noqa: E402


def _check_string(value, name):
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {_describe(value)}.")
    return value


def _check_string_lists(hyps, refs, what="string"):
    for name, seq in (("hypotheses", hyps), ("references", refs)):
        if isinstance(seq, (str, bytes)) or not isinstance(seq, (list, tuple)):
            raise TypeError(f"{name} must be a list of {what}s, got {_describe(seq)}.")
    if len(hyps) != len(refs):
        raise ValueError(f"hypotheses and references must have the same length, got "
                         f"{len(hyps)} hypotheses but {len(refs)} references.")
    if not hyps:
        raise ValueError("hypotheses must hold at least one item, got an empty list.")


def keyword_f1(hypotheses, references) -> dict:
    """Exact-match keyword precision, recall and F1, micro-averaged over a corpus.

    ``hypotheses`` and ``references``: lists (one per example) of keyword collections (lists
    or sets of strings). Each example's keywords count as a set (a repeated keyword counts
    once); a predicted keyword is correct when the example's reference set holds exactly that
    string. Precision = correct / predicted, recall = correct / reference keywords, summed over
    the corpus; F1 their harmonic mean (0 when both are 0). Returns
    ``{"precision", "recall", "f1"}``.

    Used in: book/sequence/exposure-bias.md.
    """
    _check_string_lists(hypotheses, references, "keyword list")
    correct = predicted = gold = 0
    for name, seq in (("hypotheses", hypotheses), ("references", references)):
        for i, kws in enumerate(seq):
            if isinstance(kws, (str, bytes)) or not isinstance(kws, (list, tuple, set, frozenset)):
                raise TypeError(f"{name}[{i}] must be a list or set of keywords (strings), got "
                                f"{_describe(kws)}.")
            for k in kws:
                _check_string(k, f"{name}[{i}] entries")
    for hyp, ref in zip(hypotheses, references):
        hyp, ref = set(hyp), set(ref)
        correct += len(hyp & ref)
        predicted += len(hyp)
        gold += len(ref)
    precision = correct / predicted if predicted else 0.0
    recall = correct / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def lcs_length(a, b) -> int:
    """Length of the longest common subsequence of two sequences (strings: of characters),
    by dynamic programming in ``O(len(a) len(b))``."""
    for name, seq in (("a", a), ("b", b)):
        if not isinstance(seq, (str, list, tuple)):
            raise TypeError(f"{name} must be a string or a list of tokens, got "
                            f"{_describe(seq)}.")
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l(hypothesis: str, reference: str) -> float:
    """ROUGE-L F1 of one hypothesis against one reference, at character level.

    With ``L`` the length of the longest common subsequence of the two character strings,
    precision ``P = L / len(hypothesis)``, recall ``R = L / len(reference)`` and the score
    ``2PR / (P + R)`` (0 when ``L = 0`` or a string is empty). This is the β = 1 F-measure of
    Lin (2004). The ``rouge`` package used with kexue.fm's experiments weighs ``P`` and ``R``
    with β = P / R and counts distinct tokens in its summary-level variant, so its numbers
    differ slightly from these.

    Used in: book/sequence/exposure-bias.md.
    """
    hyp, ref = _check_string(hypothesis, "hypothesis"), _check_string(reference, "reference")
    if not hyp or not ref:
        return 0.0
    lcs = lcs_length(hyp, ref)
    if lcs == 0:
        return 0.0
    p, r = lcs / len(hyp), lcs / len(ref)
    return 2 * p * r / (p + r)


def bleu(hypothesis: str, reference: str, max_n: int = 4, epsilon: float = 0.1) -> float:
    """Sentence BLEU of one hypothesis against one reference, at character level.

    Modified n-gram precisions ``p_n`` for ``n = 1..max_n`` (hypothesis n-gram counts clipped
    by the reference's, over the number of hypothesis n-grams, at least 1), a zero ``p_n``
    replaced by ``epsilon / that number`` (NLTK's ``SmoothingFunction().method1``), their
    geometric mean with equal weights, times the brevity penalty ``exp(1 - r / c)`` when the
    hypothesis (``c`` characters) is shorter than the reference (``r``). As NLTK's
    ``sentence_bleu``, the score is 0 when no character of the hypothesis matches.

    Used in: book/sequence/exposure-bias.md.
    """
    hyp, ref = _check_string(hypothesis, "hypothesis"), _check_string(reference, "reference")
    max_n = _check_int(max_n, "max_n")
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not (
            0 < epsilon < 1):
        raise ValueError(f"epsilon must be a number in (0, 1), got {_describe(epsilon)}.")
    if not hyp:
        return 0.0
    log_p = []
    for n in range(1, max_n + 1):
        h = _collections.Counter(hyp[i: i + n] for i in range(len(hyp) - n + 1))
        r = _collections.Counter(ref[i: i + n] for i in range(len(ref) - n + 1))
        matches = sum(min(c, r[g]) for g, c in h.items())
        total = max(1, sum(h.values()))
        if n == 1 and matches == 0:
            return 0.0
        log_p.append(_math.log(matches / total if matches else epsilon / total))
    c, r_len = len(hyp), len(ref)
    bp = 1.0 if c > r_len else _math.exp(1 - r_len / c)
    return bp * _math.exp(sum(log_p) / max_n)


def generation_scores(hypotheses, references, sep: str = "/") -> dict:
    """Corpus scores of generated keyword strings: keyword F1, mean ROUGE-L and mean BLEU.

    ``hypotheses``, ``references``: lists of strings of keywords joined by ``sep``. Keyword
    F1 (:func:`keyword_f1`) splits both on ``sep`` (empty pieces dropped); ROUGE-L
    (:func:`rouge_l`) and BLEU (:func:`bleu`) score the whole strings, separators included,
    character by character, averaged over the examples. Returns ``{"keyword_precision",
    "keyword_recall", "keyword_f1", "rouge_l", "bleu"}``, each in ``[0, 1]``.

    Used in: book/sequence/exposure-bias.md.
    """
    _check_string_lists(hypotheses, references)
    if not isinstance(sep, str) or not sep:
        raise ValueError(f"sep must be a non-empty string, got {_describe(sep)}.")
    for name, seq in (("hypotheses", hypotheses), ("references", references)):
        for i, s in enumerate(seq):
            _check_string(s, f"{name}[{i}]")
    kw = keyword_f1([[k for k in h.split(sep) if k] for h in hypotheses],
                    [[k for k in r.split(sep) if k] for r in references])
    n = len(hypotheses)
    return {"keyword_precision": kw["precision"], "keyword_recall": kw["recall"],
            "keyword_f1": kw["f1"],
            "rouge_l": sum(rouge_l(h, r) for h, r in zip(hypotheses, references)) / n,
            "bleu": sum(bleu(h, r) for h, r in zip(hypotheses, references)) / n}
