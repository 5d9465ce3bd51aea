"""The maximum-entropy Markov model (MEMM) and its bidirectional form, beside the CRF.

Same score terms as :mod:`kexue.layers.crf` (emissions ``f`` of shape ``(B, T, K)``,
transitions ``g`` of shape ``(K, K)``), normalised locally (kexue.fm/archives/7213):

    P(y) = softmax(f_1)[y_1] * prod_{k>=2} softmax(g[y_{k-1}, :] + f_k)[y_k].

Training with the gold previous tags needs no recursion: the logits of step ``k`` are
``f_k + g[y*_{k-1}]`` (:func:`memm_logits`), and the loss is a sum of cross-entropies
(:func:`memm_nll`). The right-to-left model uses ``g[:, y*_{k+1}]`` (the transposed
matrix, same parameters); Bi-MEMM averages the two losses. Transitions may be given
low-rank, as a pair ``(L, R)`` with ``g = L @ R.T``, in which case ``g`` is never formed.

Decoding (:func:`memm_viterbi`): exact MAP of the MEMM (edge scores are local
log-softmaxes), or the CRF decoder on raw ``f + g``.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops
from scipy.special import log_softmax

from kexue._checks import check_int, check_positive
from kexue.layers.crf import (
    PAD_LABEL,
    TaggingHead,
    _float_mask,
    check_chain_inputs,
    viterbi,
)


def _rows(trans, tags, transpose: bool):
    """``trans[tags]`` (or ``trans.T[tags]``) of shape ``(B, T, K)``; ``trans`` may be ``(L, R)``."""
    if isinstance(trans, (tuple, list)):
        left, right = trans
        if transpose:
            left, right = right, left
        return ops.matmul(ops.take(left, tags, axis=0), ops.transpose(right))
    t = ops.transpose(trans) if transpose else trans
    return ops.take(t, tags, axis=0)


def _check(emissions, trans, tags, mask):
    if isinstance(trans, (tuple, list)):
        if len(trans) != 2:
            raise ValueError("low-rank transitions must be a pair (L, R) with trans = L @ R.T.")
        left, right = trans
        k = emissions.shape[-1]
        ls, rs = tuple(left.shape), tuple(right.shape)
        if len(ls) != 2 or ls != rs or (k is not None and ls[0] != k):
            raise ValueError(f"L and R must both have shape ({k}, rank); got {ls} and {rs}.")
        check_chain_inputs(emissions, None, tags, mask)
    else:
        check_chain_inputs(emissions, trans, tags, mask)


def memm_logits(emissions, tags, trans, mask=None, reverse: bool = False):
    """Per-step logits of the MEMM with gold neighbouring tags (teacher forcing).

    Args:
        emissions: ``(B, T, K)``.
        tags: ``(B, T)`` int gold tags.
        trans: ``(K, K)`` or a low-rank pair ``(L, R)`` of ``(K, d)`` each.
        mask: ``(B, T)`` prefix mask or ``None``.
        reverse: ``False``: left to right, logits ``f_k + g[y_{k-1}, :]`` (``f_1`` alone at
            the first position). ``True``: right to left, ``f_k + g[:, y_{k+1}]``, with ``f``
            alone at each sequence's last real position.

    Returns:
        ``(B, T, K)`` logits; step ``k``'s softmax is ``P(y_k | x, neighbour)``.
    """
    _check(emissions, trans, tags, mask)
    tags = ops.cast(tags, "int32")
    m = _float_mask(mask, emissions)
    if not reverse:
        extra = _rows(trans, tags[:, :-1], transpose=False)  # g[y_{k-1}, :] for k = 2..T
        extra = ops.concatenate([ops.zeros_like(emissions[:, :1]), ops.cast(extra, emissions.dtype)], axis=1)
    else:
        extra = _rows(trans, tags[:, 1:], transpose=True)  # g[:, y_{k+1}] for k = 1..T-1
        extra = ops.cast(extra, emissions.dtype) * m[:, 1:, None]  # nothing after the last real step
        extra = ops.concatenate([extra, ops.zeros_like(emissions[:, :1])], axis=1)
    return emissions + extra


def memm_nll(emissions, tags, trans, mask=None, bidirectional: bool = False, reduction: str = "sum"):
    """MEMM negative log-likelihood per sequence, ``(B,)``.

    ``bidirectional=True`` averages the left-to-right and right-to-left NLLs (Bi-MEMM).
    ``reduction="sum"`` gives ``-log P(y)`` (per direction); ``"mean"`` divides by the
    number of real positions (the token average used by bert4keras).
    """
    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}.")
    nll = -memm_sequence_log_prob(emissions, tags, trans, mask)
    if bidirectional:
        nll = 0.5 * (nll - memm_sequence_log_prob(emissions, tags, trans, mask, reverse=True))
    if reduction == "mean":
        nll = nll / ops.sum(_float_mask(mask, emissions), axis=-1)
    return nll


def memm_sequence_log_prob(emissions, tags, trans, mask=None, reverse: bool = False):
    """``log P_MEMM(y | x)`` of the given paths, ``(B,)`` (one direction)."""
    m = _float_mask(mask, emissions)
    tags = ops.cast(tags, "int32")
    logits = memm_logits(emissions, tags, trans, mask, reverse=reverse)
    ce = keras.losses.sparse_categorical_crossentropy(tags, logits, from_logits=True)
    return -ops.sum(ce * m, axis=-1)


def memm_viterbi(emissions, trans, lengths=None, exact: bool = True):
    """Decode a left-to-right MEMM.

    Args:
        emissions: ``(B, T, K)`` NumPy; trans: ``(K, K)``; lengths: ``(B,)`` or ``None``.
        exact: ``True``: the MAP path of ``P_MEMM`` (Viterbi with edge scores
            ``log softmax(g[i, :] + f_k)[j]`` and ``log softmax(f_1)`` at the start).
            ``False``: the CRF decoder on raw ``f + g``, which ignores the local
            normalisers (what bert4keras does).

    Returns:
        A list of ``B`` int arrays.
    """
    em = np.asarray(emissions, dtype=np.float64)
    g = np.asarray(trans, dtype=np.float64)
    if not exact:
        return viterbi(em, g, lengths)[0]
    unary = np.zeros_like(em)
    unary[:, 0] = log_softmax(em[:, 0], axis=-1)
    pair = log_softmax(g[None, None] + em[:, :, None, :], axis=-1)  # (B, T, K_prev, K)
    return viterbi(unary, pair, lengths)[0]


@keras.saving.register_keras_serializable(package="kexue")
class MEMM(TaggingHead):
    """MEMM head with the interface of :class:`kexue.layers.crf.CRF`.

    Args:
        num_tags: ``K``.
        bidirectional: train on the average of both directions' NLL (Bi-MEMM, the default,
            as in bert4keras); ``False`` trains the left-to-right MEMM only.
        rank: ``None`` for a full ``(K, K)`` matrix ``trans``; an integer ``d`` stores two
            ``(K, d)`` factors ``left``, ``right`` with ``trans = left @ right.T``.
        pad_label: label of padded positions in ``y_true``.
        trans_initializer: initialiser of the transition weights.
        lr_multiplier: as in :class:`kexue.layers.crf.CRF` (full-rank transitions only).
    """

    def __init__(self, num_tags: int, bidirectional: bool = True, rank: int | None = None,
                 pad_label: int = PAD_LABEL, trans_initializer="zeros", lr_multiplier: float = 1.0,
                 **kwargs):
        super().__init__(num_tags, pad_label, **kwargs)
        self.bidirectional = bool(bidirectional)
        self.lr_multiplier = check_positive(lr_multiplier, "lr_multiplier")
        self.rank = None if rank is None else check_int(rank, "rank")
        if self.rank is not None and trans_initializer == "zeros":
            trans_initializer = "glorot_uniform"  # zero factors would never move
        self.trans_initializer = keras.initializers.get(trans_initializer)

    def build(self, input_shape):
        if self.rank is None:
            self._trans = self.add_weight(
                shape=(self.num_tags, self.num_tags), initializer=self.trans_initializer, name="trans"
            )
        else:
            shape = (self.num_tags, self.rank)
            self.left = self.add_weight(shape=shape, initializer=self.trans_initializer, name="left")
            self.right = self.add_weight(shape=shape, initializer=self.trans_initializer, name="right")
        super().build(input_shape)

    @property
    def trans(self):
        """The ``(K, K)`` transition scores of a full-rank head (stored weight times ``lr_multiplier``)."""
        if self.rank is not None:
            raise AttributeError("a low-rank MEMM has no trans weight; use transitions().")
        return self._trans * self.lr_multiplier if self.lr_multiplier != 1.0 else self._trans

    def set_transitions(self, trans):
        """Set the full-rank transition scores to ``trans`` ``(K, K)``."""
        self._trans.assign(np.asarray(trans, dtype=self._trans.dtype) / self.lr_multiplier)

    def transitions(self):
        """The parameters as :func:`memm_logits` takes them: ``trans`` or ``(left, right)``."""
        if self.rank is None:
            return self.trans
        m = self.lr_multiplier
        return (self.left * m, self.right) if m != 1.0 else (self.left, self.right)

    def dense_transitions(self) -> np.ndarray:
        """The ``(K, K)`` transition matrix as NumPy (formed from the factors if low-rank)."""
        t = self.transitions()
        if isinstance(t, tuple):
            return ops.convert_to_numpy(t[0]) @ ops.convert_to_numpy(t[1]).T
        return ops.convert_to_numpy(t)

    def sequence_loss(self, emissions, tags, mask=None):
        return memm_nll(emissions, tags, self.transitions(), mask, bidirectional=self.bidirectional)

    def decode(self, emissions, lengths=None, exact: bool = True):
        """Left-to-right decoding (:func:`memm_viterbi`); a list of int arrays."""
        return memm_viterbi(np.asarray(emissions), self.dense_transitions(), lengths, exact=exact)

    def get_config(self):
        return {
            **super().get_config(),
            "bidirectional": self.bidirectional,
            "rank": self.rank,
            "trans_initializer": keras.initializers.serialize(self.trans_initializer),
            "lr_multiplier": self.lr_multiplier,
        }
