"""Chinese word segmentation as character tagging, and its word-level scorer.

A segmented sentence is a list of words. Each character gets one of four tags
(:data:`SBME`): ``s`` a single-character word, ``b`` the beginning, ``m`` the middle and
``e`` the end of a longer word. :func:`words_to_tags` and :func:`tags_to_words` convert
between the two; :func:`illegal_transitions` counts tag bigrams the scheme forbids.
:func:`chunk_words` cuts long sentences at word boundaries (after punctuation where
possible) for batched training; :class:`CharVocab` maps characters to ids.

:func:`seg_scores` computes word-level precision = correct / predicted words, recall =
correct / gold words, F1 their harmonic mean, and OOV (IV) recall, the recall over gold words
that are not (are) in the training word list. It offers two definitions of a correct word:
``match="spans"`` (the default), the same character span is a gold word; ``match="lcs"``,
the word is paired with an equal gold word by a longest common subsequence of the two word
strings, which is what the SIGHAN bakeoff's ``score`` script does with GNU ``diff``. The two
agree for good segmentations and differ for poor ones; :func:`seg_scores` says when and why.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

import numpy as np

from kexue._checks import (
    as_array,
    check_bool,
    check_callable,
    check_choice,
    check_instance,
    check_int,
    check_int_range,
    describe,
)

SBME = ("s", "b", "m", "e")
"""Tag names by id: 0 = s (single), 1 = b (begin), 2 = m (middle), 3 = e (end)."""
S, B, M, E = range(4)

LEGAL = np.array(
    [  # to:  s  b  m  e
        [1, 1, 0, 0],  # from s
        [0, 0, 1, 1],  # from b
        [0, 0, 1, 1],  # from m
        [1, 1, 0, 0],  # from e
    ],
    dtype=bool,
)
"""``LEGAL[i, j]``: may tag ``j`` follow tag ``i``? A word starts (s/b) after s/e and goes on
(m/e) after b/m."""
LEGAL_START = (S, B)
"""Tags allowed on a sentence's first character."""
LEGAL_END = (S, E)
"""Tags allowed on a sentence's last character."""

PUNCTUATION = frozenset("，。、；：？！“”‘’（）《》〈〉『』「」—…·,.;:?!()\"'")
"""Characters after which :func:`chunk_words` prefers to cut."""


def _check_sentence(words, name="words"):
    """A segmented sentence: a list (or tuple) of non-empty strings; return it as a list."""
    if isinstance(words, (str, bytes)) or not isinstance(words, (list, tuple)):
        raise TypeError(f"{name} must be a segmented sentence, a list of words (strings), got "
                        f"{describe(words)}.")
    for w in words:
        if not isinstance(w, str):
            raise TypeError(f"{name} must hold words (strings), got {describe(w)}.")
    return list(words)


def _check_sentences(sentences, name):
    if isinstance(sentences, (str, bytes)) or not isinstance(sentences, (list, tuple)):
        raise TypeError(f"{name} must be a list of segmented sentences (lists of words), got "
                        f"{describe(sentences)}.")
    for i, sentence in enumerate(sentences):
        _check_sentence(sentence, f"{name}[{i}]")
    return list(sentences)


def _check_tags(tags, name="tags"):
    """A tag path: a 1-D array of s/b/m/e ids in [0, 4)."""
    arr = as_array(tags, name)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D path of tag ids, got shape {arr.shape}.")
    check_int_range(arr, name, 0, len(SBME))
    return arr.astype(np.int64)


def words_to_tags(words) -> np.ndarray:
    """s/b/m/e tag ids, one per character of ``"".join(words)``. Empty words are an error."""
    tags = []
    for w in _check_sentence(words):
        if not w:
            raise ValueError(f"words must not contain an empty word, got {describe(words)}.")
        tags.extend([S] if len(w) == 1 else [B] + [M] * (len(w) - 2) + [E])
    return np.array(tags, dtype=np.int64)


def tags_to_words(chars, tags) -> list[str]:
    """Cut ``chars`` into words by the tags, tolerating illegal sequences.

    A word starts at every ``s`` or ``b`` and after every ``s`` or ``e``; so ``b b`` gives two
    words and a stray ``m`` or ``e`` continues the current word.
    """
    if not isinstance(chars, str):
        chars = "".join(_check_sentence(chars, "chars"))
    tags = _check_tags(tags)
    if len(chars) != len(tags):
        raise ValueError(f"chars and tags must have the same length: {len(chars)} characters "
                         f"but {len(tags)} tags.")
    words, cur = [], ""
    prev = E
    for ch, tag in zip(chars, tags):
        tag = int(tag)
        if cur and (tag in (S, B) or prev in (S, E)):
            words.append(cur)
            cur = ""
        cur += ch
        prev = tag
    if cur:
        words.append(cur)
    return words


def illegal_transitions(tags, check_ends: bool = True) -> int:
    """Number of forbidden tag bigrams in one path (plus a bad first/last tag if ``check_ends``)."""
    tags = _check_tags(tags)
    check_ends = check_bool(check_ends, "check_ends")
    if tags.size == 0:
        return 0
    n = int((~LEGAL[tags[:-1], tags[1:]]).sum())
    if check_ends:
        n += int(tags[0] not in LEGAL_START) + int(tags[-1] not in LEGAL_END)
    return n


def chunk_words(words, maxlen: int) -> list[list[str]]:
    """Cut a segmented sentence into pieces of at most ``maxlen`` characters at word boundaries.

    Cuts go after the last punctuation word that keeps the piece within ``maxlen``, else
    before the word that would overflow it. A single word longer than ``maxlen`` is cut
    into ``maxlen``-character pieces (their tags are then those of the pieces as words).
    """
    maxlen = check_int(maxlen, "maxlen")
    words = _check_sentence(words)

    def after_last_punct(piece):
        return max((i + 1 for i, w in enumerate(piece) if w in PUNCTUATION), default=0)

    out, cur = [], []
    for word in words:
        while len(word) > maxlen:  # pathological: a word longer than a chunk
            if cur:
                out.append(cur)
                cur = []
            out.append([word[:maxlen]])
            word = word[maxlen:]
        while cur and sum(map(len, cur)) + len(word) > maxlen:
            cut = after_last_punct(cur) or len(cur)
            out.append(cur[:cut])
            cur = cur[cut:]
        cur.append(word)
    if cur:
        out.append(cur)
    return out


@dataclass
class CharVocab:
    """Character ids: 0 is padding, 1 is unknown, then characters by falling count.

    Build with :meth:`fit`; characters seen fewer than ``min_count`` times map to unknown.
    """

    chars: list[str]

    PAD = 0
    UNK = 1

    def __post_init__(self):
        if isinstance(self.chars, str) or not isinstance(self.chars, (list, tuple)):
            raise TypeError(f"chars must be a list of characters, got {describe(self.chars)}.")
        for c in self.chars:
            if not isinstance(c, str) or len(c) != 1:
                raise ValueError(f"chars must hold single characters, got {describe(c)}.")
        if len(set(self.chars)) != len(self.chars):
            raise ValueError("chars must not repeat a character.")
        self.index = {c: i + 2 for i, c in enumerate(self.chars)}

    @classmethod
    def fit(cls, sentences, min_count: int = 2) -> CharVocab:
        """Vocabulary of the characters of ``sentences`` (lists of words or strings)."""
        min_count = check_int(min_count, "min_count")
        if isinstance(sentences, (str, bytes)) or not hasattr(sentences, "__iter__"):
            raise TypeError(f"sentences must be a list of sentences (lists of words or strings), "
                            f"got {describe(sentences)}.")
        sentences = list(sentences)
        for i, s in enumerate(sentences):
            if not isinstance(s, str):
                _check_sentence(s, f"sentences[{i}]")
        counts = collections.Counter(ch for s in sentences for ch in "".join(s))
        kept = sorted((c for c, n in counts.items() if n >= min_count), key=lambda c: (-counts[c], c))
        return cls(kept)

    def __len__(self) -> int:
        return len(self.chars) + 2

    def encode(self, text: str) -> np.ndarray:
        """The ids of the characters of ``text``, ``(len(text),)`` int64."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a string, got {describe(text)}.")
        return np.array([self.index.get(ch, self.UNK) for ch in text], dtype=np.int64)


def encode_batch(vocab: CharVocab, sentences, maxlen: int | None = None, pad_label: int = -1):
    """Ids and tags of segmented sentences, right-padded to a common length.

    Returns:
        ``(x, y, lengths)``: ``x`` int ``(N, L)`` (padding 0), ``y`` int ``(N, L)`` tags
        (padding ``pad_label``), ``lengths`` ``(N,)``. ``L`` is ``maxlen`` or the longest
        sentence; longer sentences are an error (chunk them first).
    """
    check_instance(vocab, "vocab", CharVocab, "a kexue.text.CharVocab")
    sentences = _check_sentences(sentences, "sentences")
    if not sentences:
        raise ValueError("sentences must hold at least one sentence, got an empty list.")
    if not isinstance(pad_label, (int, np.integer)) or isinstance(pad_label, bool) or (
            0 <= pad_label < len(SBME)):
        raise ValueError(f"pad_label must be an integer outside the tags [0, {len(SBME)}) "
                         f"(e.g. -1), got {describe(pad_label)}.")
    texts = ["".join(s) for s in sentences]
    lengths = np.array([len(t) for t in texts], dtype=np.int64)
    if (lengths == 0).any():
        raise ValueError(f"sentences[{int(np.argmin(lengths))}] is an empty sentence.")
    width = int(lengths.max()) if maxlen is None else check_int(maxlen, "maxlen")
    if lengths.max() > width:
        raise ValueError(f"a sentence has {lengths.max()} characters, more than maxlen={width}.")
    x = np.zeros((len(texts), width), dtype=np.int64)
    y = np.full((len(texts), width), pad_label, dtype=np.int64)
    for i, (t, s) in enumerate(zip(texts, sentences)):
        x[i, : len(t)] = vocab.encode(t)
        y[i, : len(t)] = words_to_tags(s)
    return x, y, lengths


SEG_MATCHES = ("spans", "lcs")
"""The definitions of a correct word that :func:`seg_scores` offers (the first is the default)."""


def _span_matches(gold, pred):
    """For each gold word: is its character span also a word of ``pred``?"""
    spans, pos = set(), 0
    for w in pred:
        spans.add((pos, pos + len(w)))
        pos += len(w)
    matched, pos = [], 0
    for w in gold:
        matched.append((pos, pos + len(w)) in spans)
        pos += len(w)
    return matched


def _lcs_matches(gold, pred):
    """For each gold word: is it paired in a longest common subsequence of the two word lists?

    The LCS table is computed one gold word at a time with the bit-parallel recurrence of
    Allison and Dix (in Hyyrö's form): bit ``j`` of ``rows[i]`` is 0 where the LCS length of
    ``gold[:i]`` and ``pred[:j + 1]`` exceeds that of ``gold[:i]`` and ``pred[:j]``, so the
    length for ``pred[:j]`` is ``j`` minus the ones below bit ``j``. The pairs are read back
    from the end; where several LCSs exist, equal words are paired as late as possible.
    """
    n, m = len(gold), len(pred)
    where = {}
    for j, w in enumerate(pred):
        where[w] = where.get(w, 0) | (1 << j)
    ones = (1 << m) - 1
    rows = [ones]
    for w in gold:
        v = rows[-1]
        u = v & where.get(w, 0)
        rows.append(((v + u) | (v - u)) & ones)

    def lcs(i, j):  # LCS length of gold[:i] and pred[:j]
        return j - (rows[i] & ((1 << j) - 1)).bit_count()

    matched = [False] * n
    i, j = n, m
    while i and j:
        if gold[i - 1] == pred[j - 1]:  # equal last words: some LCS pairs them
            matched[i - 1] = True
            i, j = i - 1, j - 1
        elif lcs(i - 1, j) >= lcs(i, j - 1):
            i -= 1
        else:
            j -= 1
    return matched


@dataclass
class SegScores:
    """Word-level scores of a segmentation against the gold one (fractions in ``[0, 1]``).

    ``match`` is the definition of a correct word they were computed with (see
    :func:`seg_scores`)."""

    precision: float
    recall: float
    f1: float
    oov_rate: float
    oov_recall: float
    iv_recall: float
    gold_words: int
    pred_words: int
    correct: int
    match: str = "spans"


def seg_scores(gold, pred, train_words=None, match: str = "spans") -> SegScores:
    """Word-level precision, recall, F1, and OOV / IV recall of a segmentation.

    Precision = correct / predicted words, recall = correct / gold words, F1 their harmonic
    mean, all pooled over the sentences; OOV (IV) recall is the share of the gold words outside
    (inside) ``train_words`` that are correct. ``match`` says which words are correct:

    * ``"spans"`` (default): a predicted word is correct when its character span (start and end
      offset in the sentence) is also a word of the gold segmentation. Both of its boundaries
      must be right, and a word can only be right where it stands. This is the definition of
      the later segmentation literature, and it is a property of the two segmentations alone.
    * ``"lcs"``: the two sentences are compared as sequences of word *strings*; the correct
      words are the pairs of a longest common subsequence (LCS) of the two sequences, wherever
      they stand. This follows the SIGHAN bakeoff's official ``score`` script, which writes the
      words of each line one per line and counts as correct every word that ``diff -y`` leaves
      unchanged. So gold ``ab a b`` against ``a b ab`` scores P = R = F = 2/3 here (``a`` and
      ``b`` align) and 0 with spans, although no boundary of ``a b ab`` is right. Where a line
      has several LCSs, OOV / IV recall can depend on which one is paired (here: the latest
      pairs, see ``_lcs_matches``).

      Where the script can still differ: GNU ``diff`` (without ``--minimal``, as the script
      calls it) does not always find a *longest* common subsequence. After setting aside the
      identical first and last words of the two lines, it drops from the comparison every word
      that has no equal in the other line and, heuristically, words that have many equals there
      (more than 5 in a line of fewer than 256 words) when they sit inside a longer run of
      unmatched words; a word dropped that way counts as wrong even when an LCS pairs it. It
      also stops searching for a minimal alignment past a cost limit (at least 4,096 edits, out
      of reach for one sentence). So the script can count fewer correct words than ``"lcs"``,
      and even fewer than ``"spans"``: on the PKU gold cut one word per character, both
      definitions here give F1 = 0.343 and the script 0.330, because frequent characters (的,
      ，) are dropped.

    The default is ``"spans"``: it scores boundaries, which is what segmentation is, never
    credits a word for an equal word elsewhere in the line, and does not depend on a diff
    program's heuristics. For realistic segmenters (F1
    above about 0.87 on the PKU gold: forward and backward maximum matching, 10% random merges
    and splits) the two definitions and the script agree to the script's three printed
    decimals. They part for poor segmentations (heavy noise, shifted boundaries), where
    ``"lcs"`` is higher; it is never lower, since the words that match by span form a common
    subsequence. Neither reproduces the script's numbers exactly on such segmentations (see
    above); ``"lcs"`` is the one that shares the script's definition of a correct word.

    Args:
        gold, pred: lists of segmented sentences (lists of words); sentence ``i`` of both
            must have the same characters.
        train_words: the training vocabulary (a set of words); words of ``gold`` outside
            it are out-of-vocabulary (OOV). ``None``: OOV figures are NaN.
        match: ``"spans"`` or ``"lcs"``, the definition of a correct word.

    Used in: book/sequence/crf.md, book/sequence/memm.md
    """
    gold = _check_sentences(gold, "gold")
    pred = _check_sentences(pred, "pred")
    if len(gold) != len(pred):
        raise ValueError(f"gold and pred must have the same length, got {len(gold)} gold "
                         f"sentences but {len(pred)} predicted ones.")
    if train_words is not None and (isinstance(train_words, (str, bytes))
                                    or not hasattr(train_words, "__contains__")):
        raise TypeError(f"train_words must be a set of words or None, got {describe(train_words)}.")
    check_choice(match, "match", SEG_MATCHES)
    for name, sentences in (("gold", gold), ("pred", pred)):
        for i, sentence in enumerate(sentences):
            if "" in sentence:
                raise ValueError(f"{name}[{i}] must not contain an empty word, got "
                                 f"{describe(sentence)}.")
    find = _span_matches if match == "spans" else _lcs_matches
    n_gold = n_pred = n_ok = n_oov = n_oov_ok = 0
    for i, (g, p) in enumerate(zip(gold, pred)):
        if "".join(g) != "".join(p):
            raise ValueError(f"sentence {i}: gold and prediction have different characters.")
        matched = find(g, p)
        n_gold, n_pred, n_ok = n_gold + len(g), n_pred + len(p), n_ok + sum(matched)
        if train_words is not None:
            for w, ok in zip(g, matched):
                if w not in train_words:
                    n_oov += 1
                    n_oov_ok += ok
    p = n_ok / n_pred if n_pred else 0.0
    r = n_ok / n_gold if n_gold else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    if train_words is None:
        oov_rate = oov_recall = iv_recall = float("nan")
    else:
        oov_rate = n_oov / n_gold if n_gold else 0.0
        oov_recall = n_oov_ok / n_oov if n_oov else float("nan")
        n_iv = n_gold - n_oov
        iv_recall = (n_ok - n_oov_ok) / n_iv if n_iv else float("nan")
    return SegScores(p, r, f, oov_rate, oov_recall, iv_recall, n_gold, n_pred, n_ok, match)


# ----------------------------------------------------------------- taggers for segmentation


def conv_tagger(vocab_size: int, head, depth: int = 3, width: int = 128, embed_dim: int = 64,
                kernel_size: int = 3, name: str | None = None):
    """Character tagger: Embedding -> ``depth`` x Conv1D(width, kernel, relu, same) -> Dense(K) -> head.

    Args:
        vocab_size: number of character ids (``len(vocab)``).
        head: a :class:`kexue.layers.crf.TaggingHead` (``SoftmaxTagger``, ``CRF``, ``MEMM``);
            ``K = head.num_tags``.

    Returns:
        A ``keras.Model`` from ids ``(B, T)`` to emissions ``(B, T, K)``; train it with
        ``loss=head.loss``. Used in: book/sequence/crf.md, book/sequence/memm.md
    """
    import keras

    from kexue.layers.crf import TaggingHead

    check_instance(head, "head", TaggingHead, "a kexue tagging head (SoftmaxTagger, CRF, MEMM)")
    vocab_size = check_int(vocab_size, "vocab_size")
    depth = check_int(depth, "depth")
    width = check_int(width, "width")
    embed_dim = check_int(embed_dim, "embed_dim")
    kernel_size = check_int(kernel_size, "kernel_size")
    inp = keras.Input((None,), dtype="int32", name="chars")
    x = keras.layers.Embedding(vocab_size, embed_dim, name="embed")(inp)
    for i in range(depth):
        x = keras.layers.Conv1D(width, kernel_size, padding="same", activation="relu", name=f"conv{i + 1}")(x)
    x = keras.layers.Dense(head.num_tags, name="emissions")(x)
    return keras.Model(inp, head(x), name=name)


def _length_batches(lengths, batch_size: int):
    """Index arrays of at most ``batch_size`` items, in order of increasing length."""
    order = np.argsort(lengths, kind="stable")
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


def predict_emissions(model, vocab: CharVocab, texts, batch_size: int = 128) -> list[np.ndarray]:
    """Emissions ``(len(text), K)`` of each text, predicted in batches of similar length.

    Whole sentences are fed (no chunking), padded only to the longest text of their batch.
    """
    check_callable(model, "model")
    check_instance(vocab, "vocab", CharVocab, "a kexue.text.CharVocab")
    batch_size = check_int(batch_size, "batch_size")
    if isinstance(texts, str) or not isinstance(texts, (list, tuple)):
        raise TypeError(f"texts must be a list of strings, got {describe(texts)}.")
    for i, t in enumerate(texts):
        if not isinstance(t, str) or not t:
            raise ValueError(f"texts[{i}] must be a non-empty string, got {describe(t)}.")
    out: list[np.ndarray | None] = [None] * len(texts)
    for idx in _length_batches([len(t) for t in texts], batch_size):
        width = max(len(texts[i]) for i in idx)
        x = np.zeros((len(idx), width), dtype=np.int64)
        for row, i in enumerate(idx):
            x[row, : len(texts[i])] = vocab.encode(texts[i])
        em = np.asarray(model(x, training=False))  # eager: no retracing for each new width
        for row, i in enumerate(idx):
            out[i] = em[row, : len(texts[i])]
    return out


def decode_all(emissions, decode, batch_size: int = 128) -> list[np.ndarray]:
    """Apply a batch decoder ``decode(emissions (B, T, K), lengths) -> list`` to per-text emissions."""
    check_callable(decode, "decode")
    batch_size = check_int(batch_size, "batch_size")
    if isinstance(emissions, (str, bytes)) or not isinstance(emissions, (list, tuple)):
        raise TypeError(f"emissions must be a list of (T, K) arrays, one per text, got "
                        f"{describe(emissions)}.")
    emissions = [as_array(e, f"emissions[{i}]") for i, e in enumerate(emissions)]
    for i, e in enumerate(emissions):
        if e.ndim != 2 or e.shape[0] == 0 or e.shape[-1] != emissions[0].shape[-1]:
            raise ValueError(f"emissions[{i}] must have shape (T, K={emissions[0].shape[-1]}) "
                             f"with T >= 1, got shape {e.shape}.")
    out: list[np.ndarray | None] = [None] * len(emissions)
    for idx in _length_batches([len(e) for e in emissions], batch_size):
        lengths = np.array([len(emissions[i]) for i in idx])
        batch = np.zeros((len(idx), lengths.max(), emissions[idx[0]].shape[-1]))
        for row, i in enumerate(idx):
            batch[row, : lengths[row]] = emissions[i]
        for i, tags in zip(idx, decode(batch, lengths)):
            out[i] = np.asarray(tags)
    return out


def score_paths(gold, paths, train_words=None, match: str = "spans"):
    """Score decoded tag paths against the gold segmentation, words and grammar both.

    Args:
        gold: the test sentences (lists of words); ``paths``: one tag path per sentence.
        train_words: the training vocabulary, for OOV recall (see :func:`seg_scores`).
        match: the definition of a correct word, ``"spans"`` (default) or ``"lcs"`` (the
            bakeoff script's word-string alignment); see :func:`seg_scores`.

    Returns:
        ``(scores, words)``: a dict with ``"P"``, ``"R"``, ``"F1"``, ``"OOV recall"``,
        ``"illegal bigrams"`` (forbidden tag pairs), ``"illegal rate"`` (per tag pair) and
        ``"bad first/last tags"``; and the predicted segmentation, a list of word lists.
        Used in: book/sequence/crf.md, book/sequence/memm.md
    """
    gold = _check_sentences(gold, "gold")
    if isinstance(paths, (str, bytes)) or not isinstance(paths, (list, tuple)):
        raise TypeError(f"paths must be a list of tag paths, got {describe(paths)}.")
    if len(gold) != len(paths):
        raise ValueError(f"gold and paths must have the same length, got {len(gold)} gold "
                         f"sentences but {len(paths)} tag paths.")
    check_choice(match, "match", SEG_MATCHES)
    paths = [_check_tags(p, f"paths[{i}]") for i, p in enumerate(paths)]
    pred = [tags_to_words("".join(g), p) for g, p in zip(gold, paths)]
    sc = seg_scores(gold, pred, train_words, match)
    bigrams = sum(len(p) - 1 for p in paths)
    illegal = sum(illegal_transitions(p, check_ends=False) for p in paths)
    bad_ends = sum(illegal_transitions(p) for p in paths) - illegal
    return {"P": sc.precision, "R": sc.recall, "F1": sc.f1, "OOV recall": sc.oov_recall,
            "illegal bigrams": illegal, "illegal rate": illegal / max(bigrams, 1),
            "bad first/last tags": bad_ends}, pred


# ----------------------------------------------------------------- recurrent text classifiers

RNN_CELLS = ("lstm", "gru", "simple")
"""The recurrent layers :func:`rnn_classifier` can build: LSTM, GRU, SimpleRNN."""


def rnn_classifier(vocab_size: int, embed_dim: int = 128, units: int = 64, cell: str = "lstm",
                   dropout: float = 0.5, mask_zero: bool = True, name: str | None = None):
    """Binary text classifier: Embedding -> RNN (last state) -> Dropout -> Dense(1) -> sigmoid.

    Layers are named ``embedding``, ``rnn``, ``dropout``, ``logit`` (the pre-sigmoid score)
    and ``probability``, so that attributions can explain the logit
    (:mod:`kexue.attribution`). With ``mask_zero`` id 0 is padding and the RNN skips it;
    pad on the left so that the last step is the last real token.

    Args:
        vocab_size: number of token ids, padding included.
        embed_dim, units: widths of the embedding and of the recurrent state.
        cell: one of :data:`RNN_CELLS`.
        dropout: rate of the dropout on the last state, in ``[0, 1)``.
        mask_zero: whether id 0 is masked.

    Returns:
        An uncompiled ``keras.Model`` from ids ``(batch, T)`` to probabilities ``(batch, 1)``.

    Used in: book/sequence/rnn-saliency.md
    """
    import keras

    from kexue._checks import check_real

    vocab_size = check_int(vocab_size, "vocab_size", 2)
    embed_dim = check_int(embed_dim, "embed_dim")
    units = check_int(units, "units")
    cell = check_choice(cell, "cell", RNN_CELLS)
    dropout = check_real(dropout, "dropout", 0.0, 1.0, high_open=True)
    mask_zero = check_bool(mask_zero, "mask_zero")
    layer = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU,
             "simple": keras.layers.SimpleRNN}[cell]
    inp = keras.Input((None,), dtype="int32", name="ids")
    x = keras.layers.Embedding(vocab_size, embed_dim, mask_zero=mask_zero, name="embedding")(inp)
    x = layer(units, name="rnn")(x)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    x = keras.layers.Dense(1, name="logit")(x)
    out = keras.layers.Activation("sigmoid", name="probability")(x)
    return keras.Model(inp, out, name=name)
