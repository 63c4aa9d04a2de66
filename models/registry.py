"""Model bundles: joblib artifacts plus a JSON manifest, verified before loading.

A bundle is a directory::

    manifest.json        format, version, created, data hash, labels, metrics,
                         library versions, SHA-256 of every artifact file
    category.joblib      the fitted CategoryClassifier
    urgency.joblib       the fitted UrgencyModel (optional)

A joblib file runs code when it is loaded, so :func:`load_bundle` checks every hash in
the manifest first and refuses a mismatch. The registry (``models/registry/``) holds
one directory per version and a ``CURRENT`` file naming the version in service.
"""
from __future__ import annotations

import hashlib
import json
import platform
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import joblib

__all__ = ["BundleError", "Bundle", "save_bundle", "load_bundle", "sha256_file", "data_hash",
           "current_version", "set_current", "REGISTRY_DIR", "FORMAT_VERSION"]

FORMAT_VERSION = 3  # bump when a fitted estimator's attributes change
REGISTRY_DIR = Path(__file__).resolve().parent / "registry"
_LIBS = ("scikit-learn", "numpy", "scipy", "rjieba", "joblib", "opencc", "pandas")


class BundleError(RuntimeError):
    """A bundle is missing, incomplete, tampered with or from an unknown format."""


@dataclass
class Bundle:
    path: Path
    manifest: dict
    models: dict = field(default_factory=dict)  # name -> fitted estimator

    @property
    def version(self) -> str:
        return self.manifest["version"]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def data_hash(texts, labels=None) -> str:
    """SHA-256 over the training texts (and labels), order-sensitive."""
    h = hashlib.sha256()
    for i, t in enumerate(texts):
        h.update(str(t).encode("utf-8"))
        h.update(b"\x1f")
        if labels is not None:
            h.update(str(labels[i]).encode("utf-8"))
        h.update(b"\x1e")
    return h.hexdigest()


def _library_versions() -> dict:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for lib in _LIBS:
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            out[lib] = None
    return out


def save_bundle(out_dir, models: dict, *, version: str | None = None, extra: dict | None = None) -> Bundle:
    """Write ``models`` (name → fitted estimator) and a manifest to ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, model in models.items():
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            raise ValueError(f"model name {name!r} must be lower-case letters, digits and _")
        target = out / f"{name}.joblib"
        joblib.dump(model, target, compress=3)
        files[target.name] = sha256_file(target)
    now = datetime.now(timezone.utc)
    manifest = {
        "format": FORMAT_VERSION,
        "version": version or now.strftime("%Y%m%d-%H%M%S"),
        "created": now.isoformat(timespec="seconds"),
        "models": sorted(models),
        "files": files,
        "libraries": _library_versions(),
        **(extra or {}),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    return Bundle(out, manifest, dict(models))


def load_bundle(path) -> Bundle:
    """Verify every artifact's SHA-256 against the manifest, then load.

    Raises
    ------
    BundleError
        No manifest, an unknown format, a missing file or a hash mismatch.
    """
    path = Path(path)
    manifest_path = path / "manifest.json"
    if not manifest_path.exists():
        raise BundleError(f"{path}: no manifest.json; is this a model directory made by 'suqiu train'?")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise BundleError(f"{manifest_path}: not valid JSON ({err.msg}).") from None
    if manifest.get("format") != FORMAT_VERSION:
        raise BundleError(f"{path}: bundle format {manifest.get('format')!r}; this Suqiu reads format "
                          f"{FORMAT_VERSION}. Retrain with 'suqiu train'.")
    for name, expected in manifest.get("files", {}).items():
        f = path / name
        if not f.exists():
            raise BundleError(f"{path}: artifact {name} listed in the manifest is missing.")
        actual = sha256_file(f)
        if actual != expected:
            raise BundleError(f"{path}: {name} has SHA-256 {actual[:12]}…, manifest says {expected[:12]}…; "
                              "refusing to load a modified artifact.")
    models = {name: joblib.load(path / f"{name}.joblib") for name in manifest.get("models", [])}
    return Bundle(path, manifest, models)


def current_version(registry=REGISTRY_DIR) -> Path | None:
    """The bundle directory named by ``registry/CURRENT``, or None."""
    registry = Path(registry)
    pointer = registry / "CURRENT"
    if not pointer.exists():
        return None
    target = registry / pointer.read_text(encoding="utf-8").strip()
    return target if target.is_dir() else None


def set_current(bundle_dir, registry=REGISTRY_DIR) -> None:
    """Point ``registry/CURRENT`` at ``bundle_dir`` (which must sit inside the registry)."""
    registry, bundle_dir = Path(registry).resolve(), Path(bundle_dir).resolve()
    if bundle_dir.parent != registry:
        raise ValueError(f"{bundle_dir} is not inside the registry {registry}")
    tmp = registry / "CURRENT.tmp"
    tmp.write_text(bundle_dir.name + "\n", encoding="utf-8")
    tmp.replace(registry / "CURRENT")
