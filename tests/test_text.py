"""kexue.text: s/b/m/e tagging, chunking, vocabulary, and the SIGHAN-style scorer."""

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
