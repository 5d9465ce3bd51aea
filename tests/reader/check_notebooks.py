"""Run chapters' runnable notebooks as a reader would: fresh environment, the wheel, no checkout.

Usage (from the project root, with the book's virtual environment)::

    python tests/reader/check_notebooks.py WHEEL OUT_DIR book/sequence/crf.md [...]

1. Creates a fresh virtual environment in ``OUT_DIR/venv`` with only what Colab preinstalls
   and the library needs: TensorFlow (with Keras), NumPy, SciPy, Matplotlib, pandas, and
   ipykernel / nbclient to execute notebooks. Nothing of this repository is on its path.
2. Generates each chapter's runnable notebook (``_ext/runnable_notebooks.py``), whose first
   cell installs the library from ``WHEEL`` with ``%pip``, exactly as a reader's would.
3. Executes each notebook at ``smoke`` scale in that environment, from an empty folder, and
   checks that ``kexue`` was imported from the environment's site-packages.

Exits non-zero when a notebook fails; prints the time of each step.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "_ext"))

import nbformat  # noqa: E402
import runnable_notebooks as rn  # noqa: E402

# The Colab-like stack: what a reader's machine already has before installing the library.
PREINSTALLED = ["tensorflow==2.21.*", "numpy", "scipy", "matplotlib", "pandas", "jinja2", "ipykernel",
                "nbclient", "nbformat"]

RUNNER = r'''
import sys, nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
nb.cells.append(nbformat.v4.new_code_cell(
    "import kexue, sys\n"
    "assert 'site-packages' in kexue.__file__, kexue.__file__\n"
    "print('kexue', kexue.__version__, 'from', kexue.__file__)"))
NotebookClient(nb, timeout=900, kernel_name="python3", allow_errors=False).execute()
nbformat.write(nb, sys.argv[2])
'''


def main(argv: list[str]) -> int:
    wheel, out, chapters = Path(argv[0]).resolve(), Path(argv[1]).resolve(), argv[2:]
    if not wheel.is_file():
        raise SystemExit(f"no wheel at {wheel}: run `make dist` first")
    out.mkdir(parents=True, exist_ok=True)
    env_dir = out / "venv"
    t0 = time.perf_counter()
    if env_dir.exists():
        subprocess.run(["rm", "-rf", str(env_dir)], check=True)
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--quiet", *PREINSTALLED], check=True)
    print(f"fresh environment with the Colab-like stack: {time.perf_counter() - t0:.0f} s")

    bib = rn.load_bibliography(ROOT / "references.bib")
    titles = rn.page_titles(ROOT / "book")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(KEXUE_SCALE="smoke", MPLBACKEND="Agg", TF_CPP_MIN_LOG_LEVEL="3",
               PATH=f"{env_dir / 'bin'}:{env.get('PATH', '')}")
    failed = []
    for chapter in chapters:
        src = ROOT / chapter
        nb = rn.runnable_notebook(src, bib, str(wheel), titles)
        left = rn.leftover_myst(nb)
        if left:
            raise SystemExit(f"{chapter}: MyST left in the runnable notebook: {left[:5]}")
        nb_in = out / (src.stem + ".ipynb")
        nbformat.write(nb, nb_in)
        t1 = time.perf_counter()
        with tempfile.TemporaryDirectory() as cwd:
            proc = subprocess.run([str(python), "-c", RUNNER, str(nb_in),
                                   str(out / (src.stem + ".executed.ipynb"))],
                                  cwd=cwd, env=env, capture_output=True, text=True)
        took = time.perf_counter() - t1
        if proc.returncode:
            failed.append(chapter)
            print(f"FAILED {chapter} after {took:.0f} s:\n{proc.stderr[-4000:]}")
        else:
            print(f"ok {chapter}: executed at smoke in the fresh environment in {took:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
