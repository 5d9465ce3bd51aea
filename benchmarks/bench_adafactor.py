"""AdaFactor: ``kexue.optimizers.AdaFactor`` against Keras's ``Adafactor`` and ``Adam``.

Training steps of an MLP 784-1024-1024-10 at batch 128 (no XLA), and the optimizer state in
bytes per parameter (``kexue.optimizers.slot_floats`` times 4 bytes, over the parameters).
Used for book/keras/adafactor.md.
"""

from __future__ import annotations

import _harness
import _models


def run(quick):
    import keras
    from kexue.optimizers import AdaFactor, slot_floats
    x, y = _models.classification_batch(128)
    makers = {
        "Adam": lambda: keras.optimizers.Adam(1e-3),
        "keras Adafactor": lambda: keras.optimizers.Adafactor(1e-3),
        "AdaFactor": lambda: AdaFactor(1e-3),
    }
    fns, state = {}, {}
    for name, make in makers.items():
        keras.utils.set_random_seed(0)
        model = _models.mlp(width=1024)
        opt = make()
        fns[name] = _models.train_fn(model, opt, x, y)
        fns[name]()
        state[name] = 4 * slot_floats(opt) / model.count_params()
    times = _harness.cpu_times(fns, repeats=5 if quick else 15, inner=4 if quick else 12)
    what = "training step, MLP 784-1024-1024-10, batch 128"
    rows = [_harness.ratio_row(what, "AdaFactor", "keras Adafactor", times),
            _harness.ratio_row(what, "AdaFactor", "Adam", times)]
    for name in makers:
        rows.append(_harness.value_row("optimizer state, bytes per parameter (value)", name, "—",
                                       state[name]))
    return rows


if __name__ == "__main__":
    _harness.main("adafactor", run)
