"""Execute the notebooks top to bottom with nbclient, as ``make notebooks`` and
``tests/test_notebooks.py`` do.

    python notebooks/run.py                       # full mode, real data when present
    python notebooks/run.py --mode ci 02_classifier.ipynb
    python notebooks/run.py --shared ""           # as on a machine without ../shared

Executed copies (outputs included) go to ``--out`` (default ``var/notebooks/``), never back
into ``notebooks/``: the committed notebooks carry no outputs (the tests check). The run
time of each notebook is logged and written to ``times.json`` beside the copies.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

NOTEBOOK_DIR = Path(__file__).resolve().parent
REPO = NOTEBOOK_DIR.parent

log = logging.getLogger("notebooks.run")

__all__ = ["NOTEBOOK_DIR", "notebooks", "execute"]


def notebooks() -> list[Path]:
    """The notebooks, in reading order (``NN_name.ipynb``)."""
    return sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))


def execute(path: Path, *, mode: str = "ci", shared: str | None = None, cell_timeout: int = 600):
    """Run the notebook at ``path`` in a fresh ``python3`` kernel (this interpreter's: jupyter_client
    starts a kernel spec whose command is ``python`` with ``sys.executable``), working directory
    ``notebooks/``. ``shared`` sets ``SUQIU_SHARED`` (``""``: no real data; None: the
    environment's, else ``../shared/corpora``).

    Returns (the executed notebook, wall seconds, CPU seconds of the kernel). The CPU time is
    read from the kernel process once it has exited: on a shared machine it moves far less
    with the load than the wall time does.

    Raises ``nbclient.exceptions.CellExecutionError`` (the notebook, executed up to the failing
    cell, is its ``notebook`` attribute) or ``CellTimeoutError`` after ``cell_timeout`` s in one cell.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(path, as_version=4)
    env = {**os.environ, "SUQIU_NOTEBOOK_MODE": mode, "PYTHONHASHSEED": "0"}
    if shared is not None:
        env["SUQIU_SHARED"] = shared
    client = NotebookClient(nb, timeout=cell_timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    t0, cpu0 = time.perf_counter(), _children_cpu()
    try:
        client.execute(env=env)
    except CellExecutionError as err:
        err.notebook = nb
        raise
    return nb, time.perf_counter() - t0, _children_cpu() - cpu0


def _children_cpu() -> float:
    """User + system CPU seconds of this process's children that have exited (the kernels)."""
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", help="notebooks to run (default: all, in order)")
    p.add_argument("--mode", choices=("full", "ci"), default="full")
    p.add_argument("--shared", default=None, help="the real corpora folder; '' runs without real data")
    p.add_argument("--out", type=Path, default=REPO / "var" / "notebooks", help="where executed copies go")
    p.add_argument("--cell-timeout", type=int, default=3600, help="seconds one cell may take")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    log.info("arguments: %s", vars(args))
    import nbformat
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    paths = [NOTEBOOK_DIR / n for n in args.names] if args.names else notebooks()
    args.out.mkdir(parents=True, exist_ok=True)
    times, failed = {}, []
    for path in paths:
        log.info("running %s (%s mode)", path.name, args.mode)
        t0 = time.perf_counter()
        try:
            nb, seconds, cpu = execute(path, mode=args.mode, shared=args.shared, cell_timeout=args.cell_timeout)
        except (CellExecutionError, CellTimeoutError) as err:
            failed.append(path.name)
            times[path.name] = {"seconds": round(time.perf_counter() - t0, 1), "ok": False}
            if getattr(err, "notebook", None) is not None:
                nbformat.write(err.notebook, args.out / path.name)
            log.error("%s failed: %s", path.name, str(err).strip().splitlines()[-1] if str(err).strip() else err)
            continue
        nbformat.write(nb, args.out / path.name)
        times[path.name] = {"seconds": round(seconds, 1), "kernel_cpu_seconds": round(cpu, 1), "ok": True}
        log.info("%s ran in %.1f s (kernel CPU %.1f s); executed copy: %s", path.name, seconds, cpu,
                 args.out / path.name)
    shared = args.shared if args.shared is not None else os.environ.get("SUQIU_SHARED", "../shared/corpora")
    (args.out / "times.json").write_text(json.dumps({"mode": args.mode, "shared": shared, "notebooks": times},
                                                    ensure_ascii=False, indent=1), encoding="utf-8")
    if failed:
        log.error("failed: %s", ", ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
