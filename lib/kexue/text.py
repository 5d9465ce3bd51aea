"""Chinese word segmentation as character tagging, and its word-level scorer.

A segmented sentence is a list of words. Each character gets one of four tags
(:data:`SBME`): ``s`` a single-character word, ``b`` the beginning, ``m`` the middle and
``e`` the end of a longer word. :func:`words_to_tags` and :func:`tags_to_words` convert
between the two; :func:`illegal_transitions` counts tag bigrams the scheme forbids.
:func:`chunk_words` cuts long sentences at word boundaries (after punctuation where
possible) for batched training; :class:`CharVocab` maps characters to ids.

:func:`seg_scores` re-implements the definitions of the SIGHAN bakeoff ``score`` script:
a predicted word is correct when the same character span is a word of the gold
segmentation; precision = correct / predicted words, recall = correct / gold words,
F1 their harmonic mean, and OOV (IV) recall is the recall over gold words that are not
(are) in the training word list.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

import numpy as np

from kexue._checks import check_int

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


def words_to_tags(words) -> np.ndarray:
    """s/b/m/e tag ids, one per character of ``"".join(words)``. Empty words are an error."""
    tags = []
    for w in words:
        if not w:
            raise ValueError("a segmented sentence cannot contain an empty word.")
        tags.extend([S] if len(w) == 1 else [B] + [M] * (len(w) - 2) + [E])
    return np.array(tags, dtype=np.int64)


def tags_to_words(chars, tags) -> list[str]:
    """Cut ``chars`` into words by the tags, tolerating illegal sequences.

    A word starts at every ``s`` or ``b`` and after every ``s`` or ``e``; so ``b b`` gives two
    words and a stray ``m`` or ``e`` continues the current word.
    """
    chars = "".join(chars)
    if len(chars) != len(tags):
        raise ValueError(f"{len(chars)} characters but {len(tags)} tags.")
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
    tags = np.asarray(tags, dtype=np.int64)
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
        self.index = {c: i + 2 for i, c in enumerate(self.chars)}

    @classmethod
    def fit(cls, sentences, min_count: int = 2) -> CharVocab:
        """Vocabulary of the characters of ``sentences`` (lists of words or strings)."""
        min_count = check_int(min_count, "min_count")
        counts = collections.Counter(ch for s in sentences for ch in "".join(s))
        kept = sorted((c for c, n in counts.items() if n >= min_count), key=lambda c: (-counts[c], c))
        return cls(kept)

    def __len__(self) -> int:
        return len(self.chars) + 2

    def encode(self, text: str) -> np.ndarray:
        return np.array([self.index.get(ch, self.UNK) for ch in text], dtype=np.int64)


def encode_batch(vocab: CharVocab, sentences, maxlen: int | None = None, pad_label: int = -1):
    """Ids and tags of segmented sentences, right-padded to a common length.

    Returns:
        ``(x, y, lengths)``: ``x`` int ``(N, L)`` (padding 0), ``y`` int ``(N, L)`` tags
        (padding ``pad_label``), ``lengths`` ``(N,)``. ``L`` is ``maxlen`` or the longest
        sentence; longer sentences are an error (chunk them first).
    """
    texts = ["".join(s) for s in sentences]
    lengths = np.array([len(t) for t in texts], dtype=np.int64)
    if (lengths == 0).any():
        raise ValueError("empty sentence.")
    width = int(lengths.max()) if maxlen is None else maxlen
    if lengths.max() > width:
        raise ValueError(f"a sentence has {lengths.max()} characters, more than maxlen={width}.")
    x = np.zeros((len(texts), width), dtype=np.int64)
    y = np.full((len(texts), width), pad_label, dtype=np.int64)
    for i, (t, s) in enumerate(zip(texts, sentences)):
        x[i, : len(t)] = vocab.encode(t)
        y[i, : len(t)] = words_to_tags(s)
    return x, y, lengths


def _spans(words):
    spans, pos = set(), 0
    for w in words:
        spans.add((pos, pos + len(w)))
        pos += len(w)
    return spans


@dataclass
class SegScores:
    """Word-level scores of a segmentation against the gold one (fractions in ``[0, 1]``)."""

    precision: float
    recall: float
    f1: float
    oov_rate: float
    oov_recall: float
    iv_recall: float
    gold_words: int
    pred_words: int
    correct: int


def seg_scores(gold, pred, train_words=None) -> SegScores:
    """SIGHAN-style precision, recall, F1, and OOV / IV recall.

    Args:
        gold, pred: lists of segmented sentences (lists of words); sentence ``i`` of both
            must have the same characters.
        train_words: the training vocabulary (a set of words); words of ``gold`` outside
            it are out-of-vocabulary (OOV). ``None``: OOV figures are NaN.
    """
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold sentences but {len(pred)} predicted ones.")
    n_gold = n_pred = n_ok = n_oov = n_oov_ok = 0
    for i, (g, p) in enumerate(zip(gold, pred)):
        if "".join(g) != "".join(p):
            raise ValueError(f"sentence {i}: gold and prediction have different characters.")
        gs, ps = _spans(g), _spans(p)
        ok = gs & ps
        n_gold, n_pred, n_ok = n_gold + len(gs), n_pred + len(ps), n_ok + len(ok)
        if train_words is not None:
            pos = 0
            for w in g:
                if w not in train_words:
                    n_oov += 1
                    n_oov_ok += (pos, pos + len(w)) in ok
                pos += len(w)
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
    return SegScores(p, r, f, oov_rate, oov_recall, iv_recall, n_gold, n_pred, n_ok)


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

    depth = check_int(depth, "depth")
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
    out: list[np.ndarray | None] = [None] * len(emissions)
    for idx in _length_batches([len(e) for e in emissions], batch_size):
        lengths = np.array([len(emissions[i]) for i in idx])
        batch = np.zeros((len(idx), lengths.max(), emissions[idx[0]].shape[-1]))
        for row, i in enumerate(idx):
            batch[row, : lengths[row]] = emissions[i]
        for i, tags in zip(idx, decode(batch, lengths)):
            out[i] = np.asarray(tags)
    return out


def score_paths(gold, paths, train_words=None):
    """Score decoded tag paths against the gold segmentation, words and grammar both.

    Args:
        gold: the test sentences (lists of words); ``paths``: one tag path per sentence.
        train_words: the training vocabulary, for OOV recall (see :func:`seg_scores`).

    Returns:
        ``(scores, words)``: a dict with ``"P"``, ``"R"``, ``"F1"``, ``"OOV recall"``,
        ``"illegal bigrams"`` (forbidden tag pairs), ``"illegal rate"`` (per tag pair) and
        ``"bad first/last tags"``; and the predicted segmentation, a list of word lists.
        Used in: book/sequence/crf.md, book/sequence/memm.md
    """
    if len(gold) != len(paths):
        raise ValueError(f"{len(gold)} gold sentences but {len(paths)} tag paths.")
    pred = [tags_to_words("".join(g), p) for g, p in zip(gold, paths)]
    sc = seg_scores(gold, pred, train_words)
    bigrams = sum(len(p) - 1 for p in paths)
    illegal = sum(illegal_transitions(p, check_ends=False) for p in paths)
    bad_ends = sum(illegal_transitions(p) for p in paths) - illegal
    return {"P": sc.precision, "R": sc.recall, "F1": sc.f1, "OOV recall": sc.oov_recall,
            "illegal bigrams": illegal, "illegal rate": illegal / max(bigrams, 1),
            "bad first/last tags": bad_ends}, pred
