"""kexue.seq2seq: the toy, decoding against brute force, random replacement, the model."""

import itertools

import keras
import numpy as np
from kexue import seq2seq
from kexue.seq2seq import BOS, EOS


def test_toy_bigger_beam_finds_a_worse_sequence():
    toy = seq2seq.toy_beam_example()
    paths = toy["paths"]
    for path, p in {"ab": 0.33, "ad": 0.27, "cb": 0.04, "cd": 0.36}.items():
        assert abs(paths[path] - p) < 1e-12
    states = (np.zeros(1),)
    greedy, lp1 = seq2seq.greedy_decode(toy["step"], states, 2, bos_id=4, eos_id=None)
    beam2, lp2 = seq2seq.beam_search(toy["step"], states, 2, 2, bos_id=4, eos_id=None)
    word = lambda s: "".join(toy["tokens"][i] for i in s)  # noqa: E731
    assert word(greedy[0]) == "ab" and word(beam2[0]) == "cd"
    assert abs(np.exp(lp1[0]) - 0.33) < 1e-12 and abs(np.exp(lp2[0]) - 0.36) < 1e-12


def _random_lm(vocab, seed=0):
    """A step function whose next-token distribution depends on the whole prefix."""
    def step(tokens, states):
        (code,) = states
        code = code * (vocab + 1) + np.asarray(tokens) + 1
        z = np.sin(np.outer(code, np.arange(1, vocab + 1)) * 0.37 + seed) * 3.0
        z = z - z.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True)), (code,)
    return step


def _score(step, seq, eos):
    states, tokens, total = (np.zeros(1, np.int64),), np.array([BOS]), 0.0
    for tok in seq:
        logp, states = step(tokens, states)
        total += logp[0, tok]
        tokens = np.array([tok])
        if tok == eos:
            break
    return total


def test_beam_one_is_greedy_and_a_full_beam_is_the_exact_argmax():
    vocab, max_len = 4, 3  # token 3 is EOS
    for seed in range(4):
        step = _random_lm(vocab, seed)
        states = (np.zeros(3, np.int64),)
        g, g_lp = seq2seq.greedy_decode(step, states, max_len, eos_id=EOS)
        b, b_lp = seq2seq.beam_search(step, states, 1, max_len, eos_id=EOS)
        assert g == b and np.allclose(g_lp, b_lp)
        # every sequence: stops at EOS, or runs max_len tokens
        cands = []
        for n in range(1, max_len + 1):
            for seq in itertools.product(range(vocab), repeat=n):
                if EOS in seq[:-1] or (n < max_len and seq[-1] != EOS):
                    continue
                cands.append((_score(step, seq, EOS), seq))
        best_lp, best = max(cands)
        full, full_lp = seq2seq.beam_search(step, states, vocab ** max_len, max_len, eos_id=EOS)
        expected = list(best[:-1]) if best[-1] == EOS else list(best)
        assert full[0] == expected and abs(full_lp[0] - best_lp) < 1e-12
        assert full_lp[0] >= b_lp[0] - 1e-12


def test_random_replace_rates_and_what_stays():
    rng = np.random.default_rng(0)
    n, t = 10_000, 12
    x = np.zeros((n, t), np.int64)
    x[:, 0] = BOS
    lengths = rng.integers(3, t, n)
    for i, k in enumerate(lengths):
        x[i, 1:k] = rng.integers(4, 50, k - 1)
    out, events = seq2seq.random_replace(x, rng=np.random.default_rng(1))
    assert (out[:, 0] == BOS).all() and (out[x == 0] == 0).all()
    assert not events[:, 0].any() and not events[x == 0].any()
    rows = events.any(axis=1)
    # a chosen row has no event with probability 0.7^(length-1); estimate p_apply from that
    p_none = np.mean(0.7 ** (lengths - 1))
    assert abs(rows.mean() / (1 - p_none) - 0.5) < 0.02 / (1 - p_none)
    body = (x != 0) & (np.arange(t) > 0)
    chosen_rows = rows  # rows with at least one event were chosen; their token rate is >= 0.3
    rate = events[chosen_rows].sum() / body[chosen_rows].sum()
    assert 0.3 <= rate < 0.36
    # every replacement comes from the same row's target tokens
    for i in np.nonzero(rows)[0][:200]:
        assert set(out[i, 1:lengths[i]]) <= set(x[i, 1:lengths[i]])
    out_v, ev_v = seq2seq.random_replace(x, p_apply=1.0, p_token=0.3, pool="vocab", vocab_size=60,
                                         rng=np.random.default_rng(2))
    assert abs(ev_v.sum() / body.sum() - 0.3) < 0.02
    assert out_v[ev_v].min() >= 4 and out_v[ev_v].max() < 60
    same, _ = seq2seq.random_replace(x, p_apply=0.0, rng=np.random.default_rng(3))
    assert (same == x).all()


def test_random_replace_applies_per_row_with_p_apply():
    x = np.zeros((10_000, 30), np.int64)
    x[:, 0] = BOS
    x[:, 1:] = 7  # 29 target tokens: a chosen row almost surely gets an event
    _, events = seq2seq.random_replace(x, rng=np.random.default_rng(0))
    assert abs(events.any(axis=1).mean() - 0.5) < 0.02
    assert abs(events[events.any(axis=1)].sum() / (29 * events.any(axis=1).sum()) - 0.3) < 0.02


def _tiny():
    keras.utils.set_random_seed(0)
    vocab = seq2seq.make_vocab(["上海证券交易所", "周润发周星驰", "二手房/房产证"], min_count=1)
    model = seq2seq.build_seq2seq(len(vocab), dim=16, heads=2)
    src, dec, lab = seq2seq.encode_pairs(vocab, ["上海证券交易所", "周润发周星驰"],
                                         ["上海/证券", "周星驰"])
    return vocab, model, src, dec, lab


def test_encode_pairs_and_decode_ids():
    vocab, _, src, dec, lab = _tiny()
    assert dec[0, 0] == BOS and lab[0, 5] == EOS and lab[1, 3] == EOS and lab[1, 4] == 0
    assert (dec[:, 1:] == lab[:, :-1] * (lab[:, :-1] != EOS)).all()
    assert seq2seq.decode_ids(vocab, dec[0]) == "上海/证券"
    assert seq2seq.decode_ids(vocab, lab[1]) == "周星驰"
    assert seq2seq.decode_ids(vocab, src[1]) == "周润发周星驰"


def test_teacher_forcing_loss_is_the_mean_over_target_tokens():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 5, 7))
    y = np.array([[4, 5, 3, 0, 0], [6, 3, 0, 0, 0], [4, 4, 4, 4, 3]])
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    picked = [-logp[i, t, y[i, t]] for i in range(3) for t in range(5) if y[i, t]]
    loss = float(keras.ops.convert_to_numpy(seq2seq.teacher_forcing_loss(y, logits)))
    assert abs(loss - np.mean(picked)) < 1e-6


def test_decoder_is_causal_and_decoding_matches_the_forward_pass():
    vocab, model, src, dec, lab = _tiny()
    base = keras.ops.convert_to_numpy(model([src, dec]))
    changed = dec.copy()
    changed[:, 3:] = 5
    out = keras.ops.convert_to_numpy(model([src, changed]))
    assert np.abs(out[:, :3] - base[:, :3]).max() < 1e-6  # positions < 3 never see tokens >= 3
    assert np.abs(out[:, 3:] - base[:, 3:]).max() > 1e-4
    # the step functions (split encoder/decoder with a window, and the whole model) give the
    # log-probabilities of the forward pass along the gold prefix
    logp_fwd = base - np.log(np.exp(base).sum(-1, keepdims=True))
    for (init, step), steps in ((seq2seq.model_decoder(model), dec.shape[1]),
                                (_whole_model_decoder(model), 2)):  # the slow path: 2 steps
        states = init(src)
        for t in range(steps):
            logp, states = step(dec[:, t], states)
            assert np.abs(logp - logp_fwd[:, t]).max() < 1e-4
    seqs, lp = seq2seq.generate(model, src, beam=2, max_len=6)
    n = 8
    d2, l2 = np.zeros((2, n), np.int32), np.zeros((2, n), np.int32)
    for i, s in enumerate(seqs):
        d2[i, 0], d2[i, 1:len(s) + 1], l2[i, :len(s)] = BOS, s, s
        if len(s) < 6:
            l2[i, len(s)] = EOS
    assert np.abs(seq2seq.sequence_log_prob(model, src, d2, l2) - lp).max() < 1e-4


def _whole_model_decoder(model):
    """Force the generic path: a model without the encoder/decoder sub-models."""
    s = keras.Input((None,), dtype="int32")
    t = keras.Input((None,), dtype="int32")
    return seq2seq.model_decoder(keras.Model([s, t], model([s, t])))


def test_model_trains_with_the_loss():
    _, model, src, dec, lab = _tiny()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=seq2seq.teacher_forcing_loss,
                  run_eagerly=keras.backend.backend() == "tensorflow")  # tracing costs more
    before = model.evaluate([src, dec], lab, verbose=0)
    model.fit([src, dec], lab, epochs=10, batch_size=2, verbose=0)
    assert model.evaluate([src, dec], lab, verbose=0) < 0.8 * before


def test_gradient_penalty_wrapper_trains_the_seq2seq_model():
    from kexue import training

    _, model, src, dec, lab = _tiny()
    wrapped = training.AdversarialModel(model, "embedding", method="gradient_penalty", epsilon=1.0)
    wrapped.compile(optimizer=keras.optimizers.Adam(1e-2), loss=seq2seq.teacher_forcing_loss,
                    run_eagerly=keras.backend.backend() == "tensorflow")
    hist = wrapped.fit([src, dec], lab, epochs=3, batch_size=2, verbose=0)
    assert np.isfinite(hist.history["loss"]).all()
    assert hist.history["loss"][-1] < hist.history["loss"][0]
