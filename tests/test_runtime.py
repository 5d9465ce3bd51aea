import numpy as np
import pytest
from kexue import runtime


def test_default_scale_is_book(monkeypatch):
    monkeypatch.delenv("KEXUE_SCALE", raising=False)
    assert runtime.scale() == "book"


@pytest.mark.parametrize("raw,expected", [("smoke", "smoke"), (" FULL ", "full"), ("book", "book")])
def test_scale_reads_the_environment(monkeypatch, raw, expected):
    monkeypatch.setenv("KEXUE_SCALE", raw)
    assert runtime.scale() == expected


def test_bad_scale_lists_the_three(monkeypatch):
    monkeypatch.setenv("KEXUE_SCALE", "huge")
    with pytest.raises(ValueError, match="'smoke', 'book', 'full'") as err:
        runtime.scale()
    assert "huge" in str(err.value)


def test_pick(monkeypatch):
    for name, value in [("smoke", 1), ("book", 10), ("full", 100)]:
        monkeypatch.setenv("KEXUE_SCALE", name)
        assert runtime.pick(smoke=1, book=10, full=100) == value


def test_pick_needs_every_scale():
    with pytest.raises(TypeError, match="full"):
        runtime.pick(smoke=1, book=2)


def test_seed_makes_numpy_and_keras_repeat():
    import keras

    def draw():
        return np.random.rand(3), keras.ops.convert_to_numpy(keras.random.normal((4,)))

    runtime.seed(3)
    a = draw()
    runtime.seed(3)
    b = draw()
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


@pytest.mark.parametrize("bad", [-1, 1.5, "0", True])
def test_seed_rejects_bad_values(bad):
    with pytest.raises(ValueError, match="seed"):
        runtime.seed(bad)


def test_banner(monkeypatch):
    monkeypatch.setenv("KEXUE_SCALE", "smoke")
    line = runtime.banner()
    assert "\n" not in line
    assert line.startswith("scale=smoke")
    for word in ("keras", "kexue", "devices", "CPU"):
        assert word in line
    assert runtime.elapsed() > 0


def test_glue_turns_numpy_scalars_into_python_numbers(monkeypatch):
    import myst_nb

    recorded = {}
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display: recorded.update(
        {name: (value, display)}))
    runtime.glue("x", np.float32(0.5))
    runtime.glue("n", np.int64(3), display=True)
    runtime.glue("s", "text")
    assert recorded["x"] == (0.5, False) and type(recorded["x"][0]) is float
    assert recorded["n"] == (3, True) and type(recorded["n"][0]) is int
    assert recorded["s"] == ("text", False)


def test_argument_checks_name_the_argument_and_value():
    from kexue._checks import check_int, check_positive

    assert check_int(np.int64(3), "n") == 3 and check_positive(np.float32(0.5), "k") == 0.5
    for bad in (0, -1.0, float("nan"), True, "1"):
        with pytest.raises(ValueError, match="k must be a positive number"):
            check_positive(bad, "k")
    with pytest.raises(ValueError, match=r"n must be an integer >= 1, got 1.5 of type float"):
        check_int(1.5, "n")



def test_check_backend_names_the_tool_the_backends_and_the_reason():
    import keras
    from kexue._checks import check_backend

    current = keras.backend.backend()
    assert check_backend("tool", (current, "other")) == current
    with pytest.raises(NotImplementedError,
                       match=rf"tool needs one of the Keras backends 'other' \(a reason\); "
                             rf"the current backend is '{current}'"):
        check_backend("tool", ("other",), "a reason")

def test_work_returns_the_scale_value_and_records_all_three(monkeypatch):
    monkeypatch.setattr(runtime, "_WORK", None)
    for name, value in [("smoke", 20_000), ("book", 360_000), ("full", 1_200_000)]:
        monkeypatch.setenv("KEXUE_SCALE", name)
        assert runtime.work(smoke=2 * 10_000, book=6 * 60_000, full=20 * 60_000) == value
    assert runtime._WORK == {"smoke": 20_000.0, "book": 360_000.0, "full": 1_200_000.0}
    runtime.work(smoke=np.int64(3), book=np.float32(3.0), full=3)   # NumPy scalars count too
    assert runtime._WORK == {"smoke": 3.0, "book": 3.0, "full": 3.0}


@pytest.mark.parametrize("name", ["smoke", "book", "full"])
@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), True, "10", None])
def test_work_rejects_what_is_not_a_positive_finite_number(monkeypatch, name, bad):
    monkeypatch.setattr(runtime, "_WORK", None)
    values = {"smoke": 1, "book": 2, "full": 3, name: bad}
    with pytest.raises(ValueError, match=rf"^{name} must be a positive number, got "):
        runtime.work(**values)
    assert runtime._WORK is None, "a rejected declaration must not be recorded"


def test_work_needs_every_scale():
    with pytest.raises(TypeError, match="missing: book, full"):
        runtime.work(smoke=1)


def _published(monkeypatch, scale_name, seconds, **work):
    import myst_nb

    glued = {}
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display: glued.update({name: value}))
    monkeypatch.setattr(runtime, "_WORK", None)
    monkeypatch.setattr(runtime, "elapsed", lambda: seconds)
    monkeypatch.setenv("KEXUE_SCALE", scale_name)
    runtime.work(**work)
    runtime.publish_run_time()
    return glued


def test_publish_run_time_extrapolates_to_full_scale(monkeypatch, capsys):
    glued = _published(monkeypatch, "book", 90.0, smoke=1_000, book=60_000, full=1_200_000)
    assert glued["run_seconds"] == 90.0 and glued["run_scale"] == "book"
    assert glued["full_work_ratio"] == pytest.approx(20.0)
    assert glued["full_estimate_minutes"] == pytest.approx(90.0 * 20 / 60)
    assert glued["full_work_text"] == "20× the work of this run"
    out = capsys.readouterr().out
    assert "scale book: 90 s" in out and "about 30.0 minutes" in out
    glued = _published(monkeypatch, "smoke", 6.0, smoke=1_000, book=60_000, full=1_200_000)
    assert glued["full_work_ratio"] == pytest.approx(1200.0)
    assert glued["full_estimate_minutes"] == pytest.approx(120.0)
    assert glued["full_work_text"] == "1,200× the work of this run"
    glued = _published(monkeypatch, "book", 60.0, smoke=1, book=2, full=9)
    assert glued["full_work_text"] == "4.5× the work of this run"


def test_publish_run_time_at_full_scale_or_equal_work_says_the_same(monkeypatch):
    for scale_name, work in [("full", dict(smoke=1, book=2, full=3)),
                             ("book", dict(smoke=5, book=5, full=5))]:
        glued = _published(monkeypatch, scale_name, 120.0, **work)
        assert glued["full_work_ratio"] == 1.0
        assert glued["full_estimate_minutes"] == pytest.approx(2.0)
        assert glued["full_work_text"] == "the same work as this run"


def test_publish_run_time_needs_the_declared_work(monkeypatch):
    monkeypatch.setattr(runtime, "_WORK", None)
    with pytest.raises(RuntimeError, match=r"runtime\.work\(smoke=\.\.\., book=\.\.\., full=\.\.\.\)"):
        runtime.publish_run_time()
