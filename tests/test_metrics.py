"""kexue.metrics: scores of predictions, against counting by hand."""


# ------------------------------------------------------------------ multi-label classification

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from kexue import metrics  # noqa: E402


def _counted_scores(t, p):
    """The same scores by counting label by label, in plain Python."""
    tp = fp = fn = 0
    per_class = []
    for c in range(t.shape[1]):
        a = sum(1 for r in range(len(t)) if t[r, c] and p[r, c])
        b = sum(1 for r in range(len(t)) if not t[r, c] and p[r, c])
        d = sum(1 for r in range(len(t)) if t[r, c] and not p[r, c])
        tp, fp, fn = tp + a, fp + b, fn + d
        if a + b + d:
            per_class.append(2 * a / (2 * a + b + d))
    exact = sum(all(t[r] == p[r]) for r in range(len(t))) / len(t)
    return {"micro_f1": 2 * tp / (2 * tp + fp + fn), "micro_precision": tp / (tp + fp),
            "micro_recall": tp / (tp + fn), "macro_f1": sum(per_class) / len(per_class),
            "exact_match": exact}


def test_multilabel_scores_equal_counting():
    rng = np.random.default_rng(0)
    t = rng.random((40, 6)) < 0.3
    p = np.where(rng.random((40, 6)) < 0.8, t, ~t)
    t[:, 5] = p[:, 5] = False               # a class nobody has: no F1, not in the mean
    p[:3] = t[:3]
    got = metrics.multilabel_scores(t.astype(int), p)
    for key, value in _counted_scores(t, p).items():
        assert got[key] == pytest.approx(value, abs=1e-12), key
    assert metrics.multilabel_scores(t, t)["exact_match"] == 1.0
    assert metrics.multilabel_scores(t, np.zeros_like(t))["micro_f1"] == 0.0


def test_best_threshold_beats_every_grid_point():
    rng = np.random.default_rng(1)
    t = rng.random((60, 8)) < 0.25
    scores = rng.normal(size=(60, 8)) + 1.5 * t
    threshold, f1 = metrics.best_threshold(t, scores)
    assert f1 == pytest.approx(metrics.multilabel_scores(t, scores > threshold)["micro_f1"])
    grid = np.linspace(scores.min() - 1, scores.max() + 1, 401)
    brute = max(metrics.multilabel_scores(t, scores > g)["micro_f1"] for g in grid)
    assert f1 >= brute - 1e-12
    ties = np.repeat([[2.0, 1.0, 0.0]], 4, axis=0)       # tied scores are cut together
    th, _ = metrics.best_threshold(np.array([[1, 0, 0]] * 3 + [[1, 1, 0]]), ties)
    assert 1.0 < th < 2.0 or 0.0 < th < 1.0


# ------------------------------------------------ generated text: keyword F1, ROUGE-L, BLEU

import itertools  # noqa: E402
import math  # noqa: E402


def _lcs_brute(a, b):
    """Longest common subsequence by trying every subsequence of the shorter string."""
    short, long_ = (a, b) if len(a) <= len(b) else (b, a)
    for k in range(len(short), 0, -1):
        for idx in itertools.combinations(range(len(short)), k):
            sub = [short[i] for i in idx]
            it = iter(long_)
            if all(c in it for c in sub):
                return k
    return 0


def test_lcs_and_rouge_l_against_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(40):
        a = "".join(rng.choice(list("abcd"), rng.integers(0, 8)))
        b = "".join(rng.choice(list("abcd"), rng.integers(0, 8)))
        lcs = _lcs_brute(a, b)
        assert metrics.lcs_length(a, b) == lcs
        expected = 0.0 if lcs == 0 else 2 * (lcs / len(a)) * (lcs / len(b)) / (
            lcs / len(a) + lcs / len(b))
        assert metrics.rouge_l(a, b) == pytest.approx(expected, abs=1e-12)


def test_rouge_l_and_bleu_hand_computed():
    # "周润发/周星驰" against "周星驰/周润发": "周星驰" is common (3), and no 4 characters are
    assert metrics.lcs_length("周润发/周星驰", "周星驰/周润发") == 3 == _lcs_brute("周润发/周星驰",
                                                                         "周星驰/周润发")
    # hyp "abcd", ref "abce": p1 = 3/4, p2 = 2/3, p3 = 1/2, p4 = 0 -> 0.1 / 1; no brevity penalty
    assert metrics.bleu("abcd", "abce") == pytest.approx((0.75 * 2 / 3 * 0.5 * 0.1) ** 0.25, 1e-12)
    # hyp "ab", ref "abcd": p1 = 1, p2 = 1, p3, p4 have no n-grams -> 0.1 / 1; BP = exp(1 - 4/2)
    assert metrics.bleu("ab", "abcd") == pytest.approx(
        math.exp(-1) * (1 * 1 * 0.1 * 0.1) ** 0.25, 1e-12)
    # clipping: "aaaa" against "ab": p1 = 1/4, p2..p4 = 0 -> 0.1/3, 0.1/2, 0.1/1
    assert metrics.bleu("aaaa", "ab") == pytest.approx(
        (0.25 * (0.1 / 3) * (0.1 / 2) * 0.1) ** 0.25, 1e-12)
    assert metrics.bleu("xyz", "abc") == 0.0 and metrics.bleu("abcd", "abcd") == pytest.approx(1.0)
    assert metrics.bleu("abc", "abc") == pytest.approx(0.1 ** 0.25)  # no 4-gram: p4 = 0.1 / 1
    assert metrics.rouge_l("ab", "abcd") == pytest.approx(2 * 1 * 0.5 / 1.5)
    assert metrics.rouge_l("", "abc") == 0.0


def test_keyword_f1_counts_sets_and_micro_averages():
    hyp = [["上海", "证券"], ["周润发", "周润发"], []]
    ref = [["上海"], ["周润发", "周星驰"], ["二手房"]]
    s = metrics.keyword_f1(hyp, ref)
    # correct 2 (上海, 周润发), predicted 3 (sets), reference 4
    assert s["precision"] == pytest.approx(2 / 3) and s["recall"] == pytest.approx(2 / 4)
    assert s["f1"] == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    assert metrics.keyword_f1([[]], [[]]) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}


def test_generation_scores_average_the_pairs():
    hyps, refs = ["上海/证券", "周星驰"], ["上海", "周润发/周星驰"]
    out = metrics.generation_scores(hyps, refs)
    assert out["keyword_f1"] == pytest.approx(
        metrics.keyword_f1([["上海", "证券"], ["周星驰"]], [["上海"], ["周润发", "周星驰"]])["f1"])
    assert out["rouge_l"] == pytest.approx(np.mean([metrics.rouge_l(h, r) for h, r in zip(hyps, refs)]))
    assert out["bleu"] == pytest.approx(np.mean([metrics.bleu(h, r) for h, r in zip(hyps, refs)]))
