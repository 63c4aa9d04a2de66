"""What every notebook needs before its first analysis cell: the run mode, where the real
data is, and a matplotlib that draws Chinese.

Nothing here analyses anything: the notebooks call the package (``corpora``, ``models``,
``training``) for that. Two environment variables steer a run (``make notebooks`` and
``tests/test_notebooks.py`` set them):

``SUQIU_NOTEBOOK_MODE``
    ``full`` (default): every appeal, five folds, three simulated years. ``ci``: samples,
    fewer folds and shorter simulated periods, so each notebook runs in under a minute.
``SUQIU_SHARED``
    The real corpora folder (default ``../shared/corpora`` beside the repository; a relative
    path is read from the repository root). Empty, or a folder that does not exist: the
    notebooks use only the shipped corpus and simulated streams, as on a user's machine.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

# The package's progress bars come from tqdm.auto, which warns in a kernel without ipywidgets;
# the notebooks turn progress off (progress=False) anyway.
warnings.filterwarnings("ignore", message="IProgress not found")

__all__ = ["REPO", "MODE", "CI", "SHARED", "HAVE_SHARED", "sized", "shared_file", "simulator_background",
           "setup_plots", "describe_run"]

REPO = Path(__file__).resolve().parents[1]

MODE = (os.environ.get("SUQIU_NOTEBOOK_MODE") or "full").strip().lower()
if MODE not in {"full", "ci"}:
    raise ValueError(f"SUQIU_NOTEBOOK_MODE must be 'full' or 'ci', got {MODE!r}")
CI = MODE == "ci"


def _shared_dir() -> Path | None:
    value = os.environ.get("SUQIU_SHARED")
    if value is None:
        return REPO.parent / "shared" / "corpora"
    if not value.strip():
        return None
    path = Path(value.strip()).expanduser()
    return path if path.is_absolute() else (REPO / path).resolve()


SHARED = _shared_dir()
HAVE_SHARED = SHARED is not None and SHARED.is_dir()


def sized(ci, full):
    """``ci`` in CI mode, else ``full`` (sizes, folds, periods)."""
    return ci if CI else full


def shared_file(*parts: str) -> Path | None:
    """A file of the real corpora, or None when the real data is absent."""
    if not HAVE_SHARED:
        return None
    path = SHARED.joinpath(*parts)
    return path if path.exists() else None


def simulator_background() -> str:
    """``CityConfig.background`` for this run: ``"real"`` (background texts drawn from the
    real message board) when the simulator's real corpus is the one in ``SUQIU_SHARED``,
    else ``"shipped"``."""
    from corpora.simulate import REAL_CORPUS

    mine = shared_file("tipdm2020c", "appeals_labelled_dev.csv")
    same = mine is not None and REAL_CORPUS.exists() and mine.resolve() == REAL_CORPUS.resolve()
    return "real" if same else "shipped"


def setup_plots() -> str:
    """Make matplotlib draw Chinese with the font the project installs (Noto Sans CJK SC from
    Debian's fonts-noto-cjk), found the way the weekly digest finds it. Returns the family."""
    import matplotlib.pyplot as plt

    from service.digest import cjk_font

    family = cjk_font()  # FontMissingError, saying how to install the font, when it is absent
    plt.rcParams.update({"font.family": family, "axes.unicode_minus": False, "figure.dpi": 90,
                         "axes.spines.top": False, "axes.spines.right": False})
    return family


def describe_run() -> str:
    """One line for the top of a notebook: the mode and the data it reads."""
    data = f"real data from {SHARED}" if HAVE_SHARED else "no real data (shipped corpus and simulated streams only)"
    return f"mode: {MODE}; {data}"
