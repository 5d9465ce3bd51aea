"""kexue.text: s/b/m/e tagging, chunking, vocabulary, and the segmentation scorer."""

import re
import shutil
import subprocess

import numpy as np
import pytest
from kexue import text
from kexue.text import B, E, M, S


def test_tags_round_trip():
    words = ["共同", "创造", "美好", "的", "新", "世纪", "——", "二○○一年"]
    tags = text.words_to_tags(words)
    assert list(tags[:4]) == [B, E, B, E] and tags[6] == S
    assert list(tags[-5:]) == [B, M, M, M, E]
    assert text.tags_to_words("".join(words), tags) == words
    assert text.illegal_transitions(tags) == 0


def test_illegal_sequences_are_counted_and_still_cut():
    assert text.illegal_transitions([B, B, E]) == 1
    assert text.illegal_transitions([M, S, E]) == 3  # bad start, m->s, s->e (ending on e is fine)
    assert text.illegal_transitions([M, S, E], check_ends=False) == 2
    assert text.tags_to_words("abc", [B, B, E]) == ["a", "bc"]
    assert text.tags_to_words("abcd", [S, M, E, S]) == ["a", "bc", "d"]
    with pytest.raises(ValueError, match="3 characters but 2 tags"):
        text.tags_to_words("abc", [S, S])
    with pytest.raises(ValueError, match="empty word"):
        text.words_to_tags(["a", ""])


def test_scorer_on_hand_made_cases():
    gold = [["今天", "天气", "不", "错"]]
    pred = [["今天", "天气", "不错"]]
    sc = text.seg_scores(gold, pred, train_words={"今天", "天气", "不"})
    assert (sc.correct, sc.pred_words, sc.gold_words) == (2, 3, 4)
    assert sc.precision == pytest.approx(2 / 3) and sc.recall == pytest.approx(2 / 4)
    assert sc.f1 == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    assert sc.oov_rate == pytest.approx(1 / 4) and sc.oov_recall == 0.0  # 错 is OOV and missed
    assert sc.iv_recall == pytest.approx(2 / 3)
    # Same words at different places do not count: spans, not strings.
    sc = text.seg_scores([["ab", "a", "b"]], [["a", "b", "ab"]])
    assert sc.correct == 0 and np.isnan(sc.oov_recall)
    perfect = text.seg_scores(gold, gold, train_words=set())
    assert perfect.f1 == 1.0 and perfect.oov_recall == 1.0
    with pytest.raises(ValueError, match="different characters"):
        text.seg_scores([["ab"]], [["ac"]])
    with pytest.raises(ValueError, match="1 gold sentences but 2"):
        text.seg_scores([["a"]], [["a"], ["b"]])


def test_chunking_keeps_words_whole_and_prefers_punctuation():
    words = ["我们", "今天", "，", "去", "公园", "散步", "。", "然后", "回家"]
    chunks = text.chunk_words(words, 8)
    assert sum(chunks, []) == words
    assert all(len("".join(c)) <= 8 for c in chunks)
    assert chunks[0] == ["我们", "今天", "，"]
    assert text.chunk_words(["abcdefghij", "k"], 4) == [["abcd"], ["efgh"], ["ij", "k"]]
    with pytest.raises(ValueError, match="maxlen"):
        text.chunk_words(words, 0)


def test_vocab_and_batch_encoding():
    sents = [["ab", "c"], ["a", "bb"], ["d"]]
    vocab = text.CharVocab.fit(sents, min_count=2)
    assert vocab.chars == ["b", "a"] and len(vocab) == 4
    x, y, lengths = text.encode_batch(vocab, sents)
    assert x.shape == y.shape == (3, 3) and list(lengths) == [3, 3, 1]
    assert list(x[0]) == [3, 2, 1] and list(x[2]) == [1, 0, 0]
    assert list(y[0]) == [B, E, S] and list(y[2]) == [S, -1, -1]
    with pytest.raises(ValueError, match="more than maxlen=2"):
        text.encode_batch(vocab, sents, maxlen=2)


def test_score_paths_counts_words_and_grammar():
    gold = [["今天", "天气", "不", "错"], ["好"]]
    paths = [np.array([B, E, B, B, M, S]), np.array([E])]  # b->b illegal; sentence 2 ends fine, starts badly
    scores, pred = text.score_paths(gold, paths, train_words={"今天"})
    assert pred == [["今天", "天", "气不", "错"], ["好"]]
    want = text.seg_scores(gold, pred, {"今天"})
    assert (scores["P"], scores["R"], scores["F1"], scores["OOV recall"]) == (
        want.precision, want.recall, want.f1, want.oov_recall)
    assert scores["illegal bigrams"] == 2  # b->b and m->s
    assert scores["illegal rate"] == pytest.approx(2 / 5)
    assert scores["bad first/last tags"] == 1
    with pytest.raises(ValueError, match="2 gold sentences but 1 tag paths"):
        text.score_paths(gold, paths[:1])


# -- the two definitions of a correct word: character spans and the word-string LCS ----------

# (gold, prediction, correct words by span, correct words by LCS)
HAND_CASES = {
    # issue 13: the official script aligns the strings a and b; no boundary is right
    "issue": (["ab", "a", "b"], ["a", "b", "ab"], 0, 2),
    "merge": (["今天", "天气", "不", "错"], ["今天", "天气", "不错"], 2, 2),
    # one word per character: only single-character gold words can be right, by both rules
    "per character": (["中国", "人", "民", "银行"], list("中国人民银行"), 2, 2),
    # every boundary moved one character to the right: the strings a and b still align
    "shifted": (["a", "b", "ab"], ["ab", "a", "b"], 0, 2),
    "shifted, no repeats": (["ab", "cd", "ef"], ["abc", "de", "f"], 0, 0),
    # 的 occurs six times in the prediction and sits among gold words that match nothing:
    # GNU diff drops it before aligning (see test_gnu_diff_agrees_except_where_it_discards)
    "diff discards": (["甲乙", "丙丁", "戊己", "的", "庚辛", "壬癸", "子丑", "的的的的的"],
                      ["甲", "乙丙", "丁戊", "己", "的", "庚", "辛壬", "癸子", "丑"] + ["的"] * 5,
                      1, 1),
}


@pytest.mark.parametrize("name", sorted(HAND_CASES))
def test_spans_and_lcs_on_hand_cases(name):
    gold, pred, by_span, by_lcs = HAND_CASES[name]
    for match, correct in (("spans", by_span), ("lcs", by_lcs)):
        sc = text.seg_scores([gold], [pred], match=match)
        assert (sc.correct, sc.gold_words, sc.pred_words, sc.match) == (
            correct, len(gold), len(pred), match)
        assert sc.precision == pytest.approx(correct / len(pred))
        assert sc.recall == pytest.approx(correct / len(gold))
    assert by_lcs >= by_span  # the span matches are a common subsequence


def test_issue_case_scores_two_thirds_by_lcs():
    sc = text.seg_scores([["ab", "a", "b"]], [["a", "b", "ab"]], train_words={"a"}, match="lcs")
    assert sc.precision == sc.recall == sc.f1 == pytest.approx(2 / 3)
    assert sc.oov_rate == pytest.approx(2 / 3)  # ab and b are not training words
    assert sc.oov_recall == pytest.approx(1 / 2) and sc.iv_recall == 1.0  # b found, ab not
    assert text.seg_scores([["ab", "a", "b"]], [["a", "b", "ab"]]).f1 == 0.0  # the default


def test_default_is_spans_and_score_paths_passes_match_on():
    gold, pred = [["ab", "a", "b"]], [["a", "b", "ab"]]
    assert text.seg_scores(gold, pred, {"a"}) == text.seg_scores(gold, pred, {"a"}, "spans")
    path = text.words_to_tags(pred[0])
    by_span, _ = text.score_paths(gold, [path])
    by_lcs, words = text.score_paths(gold, [path], match="lcs")
    assert words == pred and by_span["F1"] == 0.0 and by_lcs["F1"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="match must be one of"):
        text.score_paths(gold, [path], match="diff")
    with pytest.raises(ValueError, match=r"pred\[0\] must not contain an empty word"):
        text.seg_scores(gold, [["ab", "", "a", "b"]])


def _lcs_length(a, b):
    """Textbook O(len(a) len(b)) dynamic programme."""
    table = np.zeros((len(a) + 1, len(b) + 1), dtype=int)
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            table[i + 1, j + 1] = table[i, j] + 1 if x == y else max(table[i, j + 1], table[i + 1, j])
    return int(table[-1, -1])


def test_lcs_pairs_a_longest_common_subsequence():
    rng = np.random.default_rng(0)
    for _ in range(200):
        a = [str(w) for w in rng.integers(0, 4, rng.integers(0, 15))]
        b = [str(w) for w in rng.integers(0, 4, rng.integers(0, 15))]
        matched = text._lcs_matches(a, b)
        assert sum(matched) == _lcs_length(a, b)
        kept, it = [w for w, ok in zip(a, matched) if ok], iter(b)
        assert all(w in it for w in kept)  # the paired gold words are a subsequence of b


def _gnu_diff_correct(gold, pred, tmp_path):
    """Correct words as the bakeoff's score script counts them: the gold words of `diff -y`'s
    output that are not on a line with a change mark (|, < or >) between the two columns."""
    for name, words in (("gold", gold), ("pred", pred)):
        (tmp_path / name).write_text("".join(w + "\n" for w in words), encoding="utf-8")
    out = subprocess.run(["diff", "-y", str(tmp_path / "gold"), str(tmp_path / "pred")],
                         capture_output=True, check=False).stdout.decode("utf-8")
    changed = sum(1 for line in out.splitlines(keepends=True)
                  if re.match(r"^\S+\s.*\s[|<>]\s", line))
    return len(gold) - changed


def _is_gnu_diff():
    if shutil.which("diff") is None:
        return False
    out = subprocess.run(["diff", "--version"], capture_output=True, check=False).stdout
    return b"GNU diffutils" in out


@pytest.mark.skipif(not _is_gnu_diff(), reason="needs GNU diff, as the bakeoff's script does")
def test_gnu_diff_agrees_except_where_it_discards(tmp_path):
    for name, (gold, pred, _, by_lcs) in HAND_CASES.items():
        want = 0 if name == "diff discards" else by_lcs  # diff drops 的, the only match
        assert _gnu_diff_correct(gold, pred, tmp_path) == want, name
