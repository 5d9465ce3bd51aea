"""kexue.transport: EMD against POT and the dual linear program, WMD/WCD, WRD and its bound,
and retrieval pruned by lower bounds against brute force."""

from __future__ import annotations

import numpy as np
import pytest
from kexue import transport
from scipy.optimize import linprog

ot = pytest.importorskip("ot")


def _random_problem(rng, m, n):
    p, q = rng.random(m) + 0.05, rng.random(n) + 0.05
    return p / p.sum(), q / q.sum(), rng.random((m, n)) * rng.uniform(0.5, 5)


def _dual_emd(p, q, cost):
    """max p·u + q·v subject to u_i + v_j <= cost_ij, u and v free (strong duality)."""
    m, n = cost.shape
    a_ub = np.zeros((m * n, m + n))
    for i in range(m):
        for j in range(n):
            a_ub[i * n + j, i] = a_ub[i * n + j, m + j] = 1
    res = linprog(-np.concatenate([p, q]), A_ub=a_ub, b_ub=cost.ravel(), bounds=(None, None),
                  method="highs")
    assert res.status == 0
    return -res.fun


def test_emd_equals_pot_and_the_dual_linear_program():
    rng = np.random.default_rng(0)
    worst = 0.0
    for _ in range(100):
        m, n = rng.integers(1, 9, size=2)
        p, q, cost = _random_problem(rng, m, n)
        ours = transport.emd(p, q, cost)
        worst = max(worst, abs(ours - ot.emd2(p, q, cost)), abs(ours - _dual_emd(p, q, cost)),
                    abs(ours - transport.emd(p, q, cost, solver="pot")))
    assert worst < 1e-8, worst


def test_dropping_the_redundant_constraint_changes_nothing():
    rng = np.random.default_rng(1)
    p, q, cost = _random_problem(rng, 5, 7)
    c, a_full, b_full = transport.transport_lp(p, q, cost, drop_redundant=False)
    _, a_drop, b_drop = transport.transport_lp(p, q, cost)
    assert a_full.shape == (12, 35) and a_drop.shape == (11, 35)
    assert np.linalg.matrix_rank(a_full.toarray()) == 11  # one row is implied by the others
    full = linprog(c, A_eq=a_full, b_eq=b_full, method="highs").fun
    assert abs(full - transport.emd(p, q, cost)) < 1e-12


@pytest.mark.parametrize("solver", transport.SOLVERS)
def test_plan_has_the_marginals_and_is_a_vertex(solver):
    rng = np.random.default_rng(2)
    for _ in range(20):
        m, n = rng.integers(1, 8, size=2)
        p, q, cost = _random_problem(rng, m, n)
        value, plan = transport.emd(p, q, cost, solver=solver, return_plan=True)
        assert plan.shape == (m, n) and (plan >= -1e-12).all()
        assert np.abs(plan.sum(1) - p).max() < 1e-9 and np.abs(plan.sum(0) - q).max() < 1e-9
        assert abs(np.sum(plan * cost) - value) < 1e-12
        assert (plan > 1e-12).sum() <= m + n - 1  # a basic solution of the m + n − 1 equalities


def _random_sentences(rng, count, dim=8):
    """Pairs of random word-vector sequences of 1 to 6 words (norms spread over a decade)."""
    out = []
    for _ in range(count):
        m, n = rng.integers(1, 7, size=2)
        scale_x = np.exp(rng.uniform(-1, 1.3, size=(m, 1)))
        scale_y = np.exp(rng.uniform(-1, 1.3, size=(n, 1)))
        out.append((rng.normal(size=(m, dim)) * scale_x, rng.normal(size=(n, dim)) * scale_y))
    return out


def test_lower_bounds_never_exceed_their_distances():
    rng = np.random.default_rng(3)
    pairs = _random_sentences(rng, 2000)
    xs, ys = [x for x, _ in pairs], [y for _, y in pairs]
    # bounds for all pairs at once, from the centroids
    wcd = np.linalg.norm(transport.sentence_centroids(xs) - transport.sentence_centroids(ys),
                         axis=1)
    diff = transport.sentence_centroids(xs, "norm") - transport.sentence_centroids(ys, "norm")
    wrd_bound = 0.5 * (diff * diff).sum(1)
    # the exact distances with POT's network simplex (fast); HiGHS on a subset
    wmd = np.array([transport.wmd(x, y, solver="pot") for x, y in pairs])
    wrd = np.array([transport.wrd(x, y, solver="pot") for x, y in pairs])
    assert (wcd <= wmd + 1e-12).all(), (wcd - wmd).max()
    assert (wrd_bound <= wrd + 1e-12).all(), (wrd_bound - wrd).max()
    assert (wrd >= -1e-12).all() and (wrd <= 2 + 1e-12).all()
    for t in range(0, 2000, 40):
        x, y = pairs[t]
        assert abs(transport.wcd(x, y) - wcd[t]) < 1e-12
        assert abs(transport.wrd_lower_bound(x, y) - wrd_bound[t]) < 1e-12
        assert abs(transport.wmd(x, y) - wmd[t]) < 1e-9
        assert abs(transport.wrd(x, y) - wrd[t]) < 1e-9


def test_identities_and_invariances():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(5, 6)), rng.normal(size=(3, 6))
    perm = rng.permutation(5)
    for dist in (transport.wmd, transport.wrd):
        assert abs(dist(x, x)) < 1e-10
        assert abs(dist(x, y) - dist(y, x)) < 1e-10
        assert abs(dist(x[perm], y) - dist(x, y)) < 1e-10
    # WRD: scaling one sentence, or splitting a vector into parallel pieces, changes nothing
    assert abs(transport.wrd(3.7 * x, y) - transport.wrd(x, y)) < 1e-10
    split = np.vstack([x[1:], 0.3 * x[:1], 0.7 * x[:1]])
    assert abs(transport.wrd(split, y) - transport.wrd(x, y)) < 1e-10
    assert abs(transport.wmd(split, y) - transport.wmd(x, y)) > 1e-3  # WMD is not invariant
    assert abs(transport.wrd_similarity(x, y) - (1 - transport.wrd(x, y))) < 1e-15
    # single words: WMD is the Euclidean distance, WRD is 1 − cos
    a, b = x[:1], y[:1]
    cos = float(a[0] @ b[0] / np.linalg.norm(a) / np.linalg.norm(b))
    assert abs(transport.wmd(a, b) - np.linalg.norm(a - b)) < 1e-12
    assert abs(transport.wrd(a, b) - (1 - cos)) < 1e-12
    assert transport.wcd(a, b) == pytest.approx(np.linalg.norm(a - b), abs=1e-12)


def test_cost_matrix_matches_a_double_loop():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(4, 3)), rng.normal(size=(2, 3))
    euc = [[np.linalg.norm(a - b) for b in y] for a in x]
    cos = [[1 - a @ b / np.linalg.norm(a) / np.linalg.norm(b) for b in y] for a in x]
    assert np.abs(transport.cost_matrix(x, y) - euc).max() < 1e-12
    assert np.abs(transport.cost_matrix(x, y, "cosine") - cos).max() < 1e-12


@pytest.mark.parametrize("kind", ["wmd", "wrd"])
def test_pruned_retrieval_returns_the_brute_force_neighbours(kind):
    rng = np.random.default_rng(6)
    centres = rng.normal(size=(6, 8)) * 3
    corpus = [centres[rng.integers(6)] + rng.normal(size=(rng.integers(2, 7), 8))
              for _ in range(150)]
    weighting = "uniform" if kind == "wmd" else "norm"
    cents = transport.sentence_centroids(corpus, weighting)
    total_exact = 0
    for qi in range(5):
        query = corpus[qi] + 0.3 * rng.normal(size=corpus[qi].shape)
        dist = getattr(transport, kind)
        c = transport.sentence_centroids([query], weighting)[0]
        gap = np.linalg.norm(cents - c, axis=1)
        bounds = gap if kind == "wmd" else 0.5 * gap**2
        fn = lambda i, query=query, dist=dist: dist(query, corpus[i], solver="pot")  # noqa: E731
        pruned = transport.nearest_neighbours(fn, bounds, k=5)
        brute = transport.nearest_neighbours(fn, bounds, k=5, prune=False)
        assert np.array_equal(pruned.indices, brute.indices)
        assert np.allclose(pruned.distances, brute.distances, atol=0, rtol=0)
        assert brute.n_exact == len(corpus) and pruned.n_exact < len(corpus)
        assert 0 < pruned.saved < 1
        total_exact += pruned.n_exact
    assert total_exact < 5 * len(corpus) / 2  # the bound saves most of the work here


def test_retrieval_ties_and_k_equal_to_n():
    values = np.array([2.0, 1.0, 1.0, 3.0, 0.5])
    res = transport.nearest_neighbours(lambda i: values[i], values, k=5)
    assert res.indices.tolist() == [4, 1, 2, 0, 3] and res.n_exact == 5
    res = transport.nearest_neighbours(lambda i: values[i], np.zeros(5), k=2)
    assert res.indices.tolist() == [4, 1] and res.n_exact == 5  # a useless bound prunes nothing
