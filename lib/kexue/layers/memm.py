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

from kexue._checks import (
    as_array,
    as_tensor,
    check_bool,
    check_choice,
    check_dtype,
    check_finite,
    check_int,
    check_positive,
    check_shape,
)
from kexue.layers.crf import (
    PAD_LABEL,
    TaggingHead,
    _check_lengths,
    _check_set_trans,
    _float_mask,
    _real_tags,
    _required,
    _zero_padding,
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
    """:func:`check_chain_inputs`, with ``trans`` either ``(K, K)`` or a low-rank pair."""
    _required(tags=tags, trans=trans)
    if isinstance(trans, (tuple, list)):
        if len(trans) != 2:
            raise ValueError(
                f"trans must be a (K, K) matrix or a low-rank pair (L, R) with trans = L @ R.T, "
                f"got a {type(trans).__name__} of {len(trans)} items.")
        emissions, _, tags, mask = check_chain_inputs(emissions, None, tags, mask)
        k = emissions.shape[-1]
        left, right = (as_tensor(f, n) for f, n in zip(trans, ("L", "R")))
        dims = {} if k is None else {"K": k}
        for factor, name in ((left, "L"), (right, "R")):
            check_dtype(factor, f"trans {name}", "number")
            check_shape(factor, f"trans {name}", ("K", "rank"), dims)
        return emissions, (left, right), tags, mask
    return check_chain_inputs(emissions, trans, tags, mask)


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
    reverse = check_bool(reverse, "reverse")
    emissions, trans, tags, mask = _check(emissions, trans, tags, mask)
    m = _float_mask(mask, emissions)
    emissions = _zero_padding(emissions, m)
    tags = _real_tags(tags, m)
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
    check_choice(reduction, "reduction", ("sum", "mean"))
    bidirectional = check_bool(bidirectional, "bidirectional")
    emissions, trans, tags, mask = _check(emissions, trans, tags, mask)
    nll = -memm_sequence_log_prob(emissions, tags, trans, mask)
    if bidirectional:
        nll = 0.5 * (nll - memm_sequence_log_prob(emissions, tags, trans, mask, reverse=True))
    if reduction == "mean":
        nll = nll / ops.sum(_float_mask(mask, emissions), axis=-1)
    return nll


def memm_sequence_log_prob(emissions, tags, trans, mask=None, reverse: bool = False):
    """``log P_MEMM(y | x)`` of the given paths, ``(B,)`` (one direction)."""
    emissions, trans, tags, mask = _check(emissions, trans, tags, mask)
    m = _float_mask(mask, emissions)
    logits = memm_logits(emissions, tags, trans, mask, reverse=reverse)
    ce = keras.losses.sparse_categorical_crossentropy(_real_tags(tags, m), logits, from_logits=True)
    return -ops.sum(ops.where(ops.greater(m, 0), ce, ops.zeros_like(ce)), axis=-1)


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
    exact = check_bool(exact, "exact")
    em = as_array(emissions, "emissions", np.float64)
    if em.ndim != 3 or 0 in em.shape:
        raise ValueError(f"emissions must have shape (batch, time, tags) with no empty axis, "
                         f"got shape {em.shape}.")
    check_finite(em, "emissions", allow="-inf")
    g = as_array(trans, "trans", np.float64)
    if g.shape != (em.shape[2],) * 2:
        raise ValueError(f"trans must have shape {(em.shape[2],) * 2} to match emissions of shape "
                         f"{em.shape}, got shape {g.shape}.")
    check_finite(g, "trans", allow="-inf")
    lengths = _check_lengths(lengths, em.shape[0], em.shape[1])
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
        self.bidirectional = check_bool(bidirectional, "bidirectional")
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
        if self.rank is not None:
            raise AttributeError("a low-rank MEMM has no full trans weight to set; set left and "
                                 "right instead.")
        self._trans.assign(_check_set_trans(trans, self.num_tags, self._trans.dtype)
                           / self.lr_multiplier)

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
        return memm_viterbi(emissions, self.dense_transitions(), lengths, exact=exact)

    def get_config(self):
        return {
            **super().get_config(),
            "bidirectional": self.bidirectional,
            "rank": self.rank,
            "trans_initializer": keras.initializers.serialize(self.trans_initializer),
            "lr_multiplier": self.lr_multiplier,
        }
