r"""Optimal transport between small discrete distributions, and the distances it gives
between two sequences of word vectors.

- :func:`emd`: the earth mover's (Wasserstein-1) distance between two histograms ``p`` (m,)
  and ``q`` (n,) under a cost matrix ``cost`` (m, n), as the linear program

      min_{γ ≥ 0} Σ_ij γ_ij c_ij   subject to   Σ_j γ_ij = p_i,   Σ_i γ_ij = q_j,

  solved with SciPy's HiGHS (``solver="highs"``, the default; the last equality, implied by
  the others, is dropped) or with POT's network simplex (``solver="pot"``, ``ot.emd``, which
  needs the optional package ``pot``);
- :func:`cost_matrix`: Euclidean or cosine costs between the rows of two matrices;
- :func:`wmd` (word mover's distance: uniform weights, Euclidean costs) and its lower bound
  :func:`wcd` (the distance between the mean vectors);
- :func:`wrd` (word rotator's distance: weights proportional to the vector norms, cosine
  costs), :func:`wrd_similarity` (1 − WRD) and the lower bound :func:`wrd_lower_bound`
  (half the squared distance between the norm-weighted mean directions);
- :func:`sentence_centroids`: those mean vectors for many sentences at once, so that the
  bounds of one query against a whole corpus are one vectorised expression;
- :func:`nearest_neighbours`: the k nearest candidates under an expensive distance, visiting
  candidates in the order of a cheap lower bound and stopping as soon as the bound exceeds
  the k-th best distance found; it counts the exact evaluations it needed.

Everything is NumPy/SciPy in float64; no Keras is needed.

Used in: book/sequence/word-movers-distance.md
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np

from kexue._checks import (
    ArgumentTypeError,
    as_array,
    check_bool,
    check_callable,
    check_choice,
    check_int,
    check_real,
    describe,
)

__all__ = [
    "SOLVERS",
    "emd",
    "transport_lp",
    "cost_matrix",
    "wmd",
    "wcd",
    "wrd",
    "wrd_similarity",
    "wrd_lower_bound",
    "sentence_centroids",
    "nearest_neighbours",
    "Neighbours",
]

SOLVERS = ("highs", "pot")
"""The exact solvers :func:`emd` offers: SciPy's HiGHS linear program, POT's network simplex."""

_MASS_TOL = 1e-6  # how far from 1 the total mass of p or q may be


# --------------------------------------------------------------------------- checks


def _histogram(p, name: str) -> np.ndarray:
    arr = as_array(p, name, "float64")
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array of masses, got shape {arr.shape}.")
    if not np.isfinite(arr).all() or (arr < 0).any():
        raise ValueError(f"{name} must hold finite non-negative masses, got values from "
                         f"{arr.min()!r} to {arr.max()!r}.")
    total = arr.sum()
    if abs(total - 1) > _MASS_TOL:
        raise ValueError(f"{name} must sum to 1 (a probability distribution), got a sum of "
                         f"{total!r}.")
    return arr / total


def _vectors(x, name: str, dim: int | None = None) -> np.ndarray:
    arr = as_array(x, name, "float64")
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} must have shape (words, dim) with at least one word, got "
                         f"shape {arr.shape}.")
    if dim is not None and arr.shape[1] != dim:
        raise ValueError(f"{name} must have shape (words, dim={dim}) to match x, got shape "
                         f"{arr.shape}.")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must hold finite values, got a NaN or infinity (shape "
                         f"{arr.shape}).")
    return arr


def _nonzero_rows(x: np.ndarray, name: str) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1)
    if (norms == 0).any():
        raise ValueError(f"{name} must have no zero vector (its direction is undefined and its "
                         f"weight would be 0: drop it first), got one at row "
                         f"{int(np.flatnonzero(norms == 0)[0])} of shape {x.shape}.")
    return norms


def _pair(x, y) -> tuple[np.ndarray, np.ndarray]:
    x = _vectors(x, "x")
    return x, _vectors(y, "y", x.shape[1])


# --------------------------------------------------------------------------- the linear program


def _problem(p, q, cost):
    p, q = _histogram(p, "p"), _histogram(q, "q")
    cost = as_array(cost, "cost", "float64")
    if cost.shape != (p.size, q.size):
        raise ValueError(f"cost must have shape (m={p.size}, n={q.size}) to match p and q, got "
                         f"shape {cost.shape}.")
    if not np.isfinite(cost).all():
        raise ValueError(f"cost must hold finite values, got a NaN or infinity (shape "
                         f"{cost.shape}).")
    return p, q, cost


def transport_lp(p, q, cost, drop_redundant: bool = True):
    """The transportation problem as the arrays of ``scipy.optimize.linprog``.

    The unknown is the plan γ (m, n), flattened row by row into ``m·n`` variables. Row ``i``
    of the equality matrix sums γ_i· (its source mass ``p_i``), row ``m + j`` sums γ_·j (its
    target mass ``q_j``). The ``m + n`` equalities have rank ``m + n − 1`` (both sides sum to
    the same total), so with ``drop_redundant`` the last one is left out.

    Returns ``(c, A_eq, b_eq)``: the costs (m·n,), a sparse CSR matrix
    (m + n − 1 or m + n, m·n) and the right-hand side.

    Used in: book/sequence/word-movers-distance.md
    """
    import scipy.sparse as sp

    p, q, cost = _problem(p, q, cost)
    drop_redundant = check_bool(drop_redundant, "drop_redundant")
    m, n = p.size, q.size
    k = np.arange(m * n)
    rows = np.concatenate([k // n, m + k % n])
    a_eq = sp.csr_matrix((np.ones(2 * m * n), (rows, np.concatenate([k, k]))),
                         shape=(m + n, m * n))
    b_eq = np.concatenate([p, q])
    if drop_redundant:
        a_eq, b_eq = a_eq[:-1], b_eq[:-1]
    return cost.ravel(), a_eq, b_eq


def emd(p, q, cost, solver: str = "highs", return_plan: bool = False):
    r"""Earth mover's distance between histograms ``p`` (m,) and ``q`` (n,) under ``cost`` (m, n).

    ``EMD = min_{γ ≥ 0, γ1 = p, γᵀ1 = q} Σ_ij γ_ij cost_ij``. ``p`` and ``q`` must be
    non-negative and sum to 1 (within 1e-6; they are renormalised exactly).

    Args:
        solver: ``"highs"``: the linear program of :func:`transport_lp` (redundant equality
            dropped) solved by ``scipy.optimize.linprog(method="highs")``; ``"pot"``: POT's
            network simplex ``ot.emd`` (needs ``pip install pot``; about ten times faster on
            small problems). Both are exact: they agree to rounding error.
        return_plan: also return the optimal plan γ (m, n).

    Returns:
        The distance (a float), or ``(distance, plan)``.

    Used in: book/sequence/word-movers-distance.md
    """
    check_choice(solver, "solver", SOLVERS)
    return_plan = check_bool(return_plan, "return_plan")
    p, q, cost = _problem(p, q, cost)
    if solver == "highs":
        from scipy.optimize import linprog

        c, a_eq, b_eq = transport_lp(p, q, cost)
        res = linprog(c, A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs")
        if res.status != 0:  # pragma: no cover - a feasible, bounded LP
            raise RuntimeError(f"linprog failed on the transport problem: {res.message}")
        plan = res.x.reshape(cost.shape)
    else:
        plan = _pot().emd(p, q, cost)
    value = float(np.sum(plan * cost))
    return (value, plan) if return_plan else value


def _pot():
    try:
        import ot
    except ImportError as err:  # pragma: no cover - pot is in requirements.txt
        raise ImportError("solver='pot' needs the POT package: pip install pot") from err
    return ot


# --------------------------------------------------------------------------- sequence distances


def cost_matrix(x, y, metric: str = "euclidean") -> np.ndarray:
    """Costs between the rows of ``x`` (m, d) and ``y`` (n, d): an (m, n) float64 matrix.

    ``metric="euclidean"``: ‖x_i − y_j‖; ``"cosine"``: 1 − cos(x_i, y_j), in [0, 2] (no zero
    rows allowed).

    Used in: book/sequence/word-movers-distance.md
    """
    check_choice(metric, "metric", ("euclidean", "cosine"))
    x, y = _pair(x, y)
    if metric == "euclidean":
        # the differences themselves, not |x|² + |y|² − 2x·y, which loses the small distances
        return np.linalg.norm(x[:, None, :] - y[None, :, :], axis=-1)
    nx, ny = _nonzero_rows(x, "x"), _nonzero_rows(y, "y")
    return np.clip(1 - (x / nx[:, None]) @ (y / ny[:, None]).T, 0, 2)


def wmd(x, y, solver: str = "highs") -> float:
    """Word mover's distance between word-vector sequences ``x`` (m, d) and ``y`` (n, d).

    Uniform weights (1/m, 1/n) and Euclidean costs: ``emd(1/m, 1/n, ‖x_i − y_j‖)``.

    Used in: book/sequence/word-movers-distance.md
    """
    x, y = _pair(x, y)
    m, n = len(x), len(y)
    return emd(np.full(m, 1 / m), np.full(n, 1 / n), cost_matrix(x, y), solver=solver)


def wcd(x, y) -> float:
    """Word centroid distance ‖mean(x) − mean(y)‖, a lower bound of :func:`wmd`.

    Used in: book/sequence/word-movers-distance.md
    """
    x, y = _pair(x, y)
    return float(np.linalg.norm(x.mean(0) - y.mean(0)))


def wrd(x, y, solver: str = "highs") -> float:
    """Word rotator's distance between ``x`` (m, d) and ``y`` (n, d), in [0, 2].

    Weights proportional to the vector norms (p_i = ‖x_i‖ / Σ‖x‖), costs 1 − cos(x_i, y_j).
    Zero vectors are refused (drop them first).

    Used in: book/sequence/word-movers-distance.md
    """
    x, y = _pair(x, y)
    nx, ny = _nonzero_rows(x, "x"), _nonzero_rows(y, "y")
    return emd(nx / nx.sum(), ny / ny.sum(), cost_matrix(x, y, "cosine"), solver=solver)


def wrd_similarity(x, y, solver: str = "highs") -> float:
    """1 − :func:`wrd`, a similarity in [−1, 1] (1 for sequences of the same directions).

    Used in: book/sequence/word-movers-distance.md
    """
    return 1.0 - wrd(x, y, solver=solver)


def wrd_lower_bound(x, y) -> float:
    """½ ‖Σx/Σ‖x‖ − Σy/Σ‖y‖‖², a lower bound of :func:`wrd` (Jensen on the unit vectors).

    Used in: book/sequence/word-movers-distance.md
    """
    x, y = _pair(x, y)
    nx, ny = _nonzero_rows(x, "x"), _nonzero_rows(y, "y")
    diff = x.sum(0) / nx.sum() - y.sum(0) / ny.sum()
    return float(0.5 * diff @ diff)


def sentence_centroids(sentences, weighting: str = "uniform") -> np.ndarray:
    """One mean vector per sentence: an (N, d) matrix for N word-vector arrays (words_k, d).

    ``weighting="uniform"``: the mean of the rows, so ‖c_a − c_b‖ is :func:`wcd`;
    ``"norm"``: Σ rows / Σ row norms, the norm-weighted mean of the unit vectors, so
    ½‖c_a − c_b‖² is :func:`wrd_lower_bound`.

    Used in: book/sequence/word-movers-distance.md
    """
    check_choice(weighting, "weighting", ("uniform", "norm"))
    if not isinstance(sentences, (list, tuple)) or not sentences:
        raise ArgumentTypeError(f"sentences must be a non-empty list of (words, dim) arrays, "
                                f"got {describe(sentences)}.")
    out, dim = [], None
    for k, s in enumerate(sentences):
        s = _vectors(s, f"sentences[{k}]", dim)
        dim = s.shape[1]
        if weighting == "uniform":
            out.append(s.mean(0))
        else:
            out.append(s.sum(0) / _nonzero_rows(s, f"sentences[{k}]").sum())
    return np.stack(out)


# --------------------------------------------------------------------------- retrieval


@dataclass(frozen=True)
class Neighbours:
    """The result of :func:`nearest_neighbours`.

    ``indices`` (k,) int: the nearest candidates, closest first (ties: lower index first);
    ``distances`` (k,) float64: their exact distances; ``n_exact``: how many exact distances
    were computed; ``n_candidates``: how many candidates there were.
    """

    indices: np.ndarray
    distances: np.ndarray
    n_exact: int
    n_candidates: int

    def __post_init__(self):
        for name in ("indices", "distances"):
            value = getattr(self, name)
            if not isinstance(value, np.ndarray) or value.ndim != 1:
                raise ArgumentTypeError(f"{name} must be a 1-D NumPy array, got "
                                        f"{describe(value)}.")
        if self.indices.shape != self.distances.shape:
            raise ValueError(f"distances must have the shape of indices {self.indices.shape}, "
                             f"got shape {self.distances.shape}.")
        n = check_int(self.n_candidates, "n_candidates", 1)
        check_int(self.n_exact, "n_exact", 0, f"an integer in [0, {n}]", n)

    @property
    def saved(self) -> float:
        """Share of the exact evaluations that the bound made unnecessary."""
        return 1.0 - self.n_exact / self.n_candidates


def nearest_neighbours(distance, bounds, k: int, prune: bool = True,
                       slack: float = 1e-12) -> Neighbours:
    """The ``k`` candidates nearest under an expensive ``distance``, pruned by lower bounds.

    Args:
        distance: ``distance(i) -> float``, the exact distance of candidate ``i`` (e.g. the
            WMD between the query and sentence ``i``).
        bounds: (N,) lower bounds, ``bounds[i] <= distance(i)`` (e.g. the WCD of every
            candidate, one vectorised expression with :func:`sentence_centroids`).
        k: how many neighbours, 1 <= k <= N.
        prune: visit the candidates in increasing order of their bound and stop at the first
            whose bound exceeds the k-th smallest exact distance found so far (plus ``slack``,
            which absorbs rounding in a bound that is tight); ``False``: compute every
            distance (brute force).

    Returns:
        :class:`Neighbours`. With a valid bound the neighbours are exactly those of brute
        force, ordered by (distance, index).

    Used in: book/sequence/word-movers-distance.md
    """
    check_callable(distance, "distance")
    b = as_array(bounds, "bounds", "float64")
    if b.ndim != 1 or b.size == 0:
        raise ValueError(f"bounds must be a non-empty 1-D array, got shape {b.shape}.")
    if np.isnan(b).any():
        raise ValueError(f"bounds must not hold NaN, got {int(np.isnan(b).sum())} NaN values.")
    n = b.size
    k = check_int(k, "k", 1, f"an integer in [1, {n}] (the number of candidates)", n)
    prune = check_bool(prune, "prune")
    slack = check_real(slack, "slack", 0)
    order = np.lexsort((np.arange(n), b)) if prune else np.arange(n)
    best: list[tuple[float, int]] = []  # max-heap of the k best as (-distance, -index)
    n_exact = 0
    for i in order:
        if prune and len(best) == k and b[i] > -best[0][0] + slack:
            break
        d = float(distance(int(i)))
        n_exact += 1
        item = (-d, -int(i))
        if len(best) < k:
            heapq.heappush(best, item)
        elif item > best[0]:
            heapq.heapreplace(best, item)
    ranked = sorted((-d, -i) for d, i in best)
    return Neighbours(np.array([i for _, i in ranked], dtype=np.int64),
                      np.array([d for d, _ in ranked], dtype=np.float64), n_exact, n)
