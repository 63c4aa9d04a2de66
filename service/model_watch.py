"""Hot swapping of the served model: each server process follows the registry's ``CURRENT``.

:class:`ModelWatcher` runs in a background thread of every server process (each worker of
``suqiu serve --workers N`` has its own). Every ``SUQIU_MODEL_POLL_S`` it reads
``CURRENT`` and the modification times of ``CURRENT`` and of the manifest of the bundle it
names. When they change (a promotion, a rollback, a bundle rebuilt in place) it loads and
verifies the bundle, builds the :class:`~models.tagger.Tagger`, warms it, registers the
version in the database, and only then swaps ``app.state.tagger`` — one attribute
assignment. A request reads ``state.tagger`` once and uses that object to the end, so
requests in flight finish on the model they started with and no request mixes two models.

A bundle that fails to load is logged once and the old model keeps serving; it is tried
again when ``CURRENT`` or the manifest changes (promoting it again, once repaired, does).
A database that cannot register the version is retried at the next poll (with the bundle
already loaded). With ``SUQIU_MODEL_DIR`` set the model is pinned and no watcher runs
(ADR 0007).
"""
from __future__ import annotations

import gc
import logging
import os
import sys
import threading
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from service import store

log = logging.getLogger(__name__)

__all__ = ["ModelWatcher", "load_tagger", "limit_torch_threads", "stamp"]


def limit_torch_threads(n: int) -> None:
    """Run the encoder backends' torch on ``n`` threads in this server process.

    A server tags many requests at once: on two cores, torch's own threads spinning for a
    sibling that is not scheduled made an encoder six times slower (ADR 0009). Applied at
    once when torch is loaded, else through ``OMP_NUM_THREADS``, which torch reads when an
    encoder bundle first imports it (a tfidf bundle never does: no torch import here)."""
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)
    else:
        os.environ["OMP_NUM_THREADS"] = str(n)


def load_tagger(path, *, city: str | None = None):
    """The tagger of the bundle at ``path`` (hashes checked first), warmed: the segmenter,
    converters and the models' lazy parts are loaded before it answers a request."""
    from models.registry import load_bundle
    from models.tagger import Tagger

    tagger = Tagger(load_bundle(path), city=city)
    tagger.tag(["预热"])
    return tagger


def stamp(path, registry=None) -> tuple | None:
    """What identifies the bundle at ``path`` as served: its directory, its manifest's
    modification time and size (``save_bundle`` writes the manifest last) and the time
    ``registry/CURRENT`` was last written (every promotion rewrites it, so promoting a
    repaired bundle again is seen). None when there is no manifest."""
    try:
        st = (Path(path) / "manifest.json").stat()
    except OSError:
        return None
    try:
        pointer = (Path(registry) / "CURRENT").stat().st_mtime_ns if registry is not None else None
    except OSError:
        pointer = None
    return str(Path(path).resolve()), st.st_mtime_ns, st.st_size, pointer


def _freeze() -> None:
    # as at startup (service/api.py): the model's objects never die, keep them out of the
    # cyclic collector's full passes
    gc.collect()
    gc.freeze()


class ModelWatcher:
    """Follow ``registry/CURRENT`` and swap ``state.tagger`` when it changes.

    ``state`` is the app's state (``tagger``, ``sessions``); ``serving`` the
    :func:`stamp` of the bundle the lifespan loaded. :meth:`check` is one poll (the thread
    calls it every ``interval_s``; tests may call it directly).
    """

    def __init__(self, state, *, registry, interval_s: float, serving: tuple | None, city: str | None = None):
        self.state = state
        self.registry = registry
        self.interval_s = interval_s
        self.serving = serving
        self.city = city
        self._failed: tuple | None = None  # the stamp that failed to load: not tried again until it changes
        self._pending = None  # (stamp, tagger) loaded but not yet registered in the database
        self._last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="suqiu-model-watcher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.check()
            except Exception as err:  # noqa: BLE001 — the thread must outlive any one poll
                message = f"{type(err).__name__}: {err}"
                if message != self._last_error:  # once per distinct error, not once a second
                    log.exception("checking the registry for a new model failed")
                    self._last_error = message

    def check(self) -> bool:
        """One poll: swap to the bundle ``CURRENT`` names if it changed. True when swapped."""
        from models.registry import current_version

        path = current_version(self.registry)
        if path is None:
            return False  # no CURRENT (or it names nothing): keep serving
        now = stamp(path, self.registry)
        if now is None or now == self.serving or now == self._failed:
            return False
        if self._pending is not None and self._pending[0] == now:
            tagger = self._pending[1]
        else:
            self._pending = None
            try:
                tagger = load_tagger(path, city=self.city)
            except Exception as err:  # noqa: BLE001 — any unloadable bundle: the old model keeps serving
                log.error("model %s cannot be served (%s: %s); still serving %s", path.name, type(err).__name__,
                          err, self.state.tagger.version)
                self._failed = now
                return False
        try:
            with self.state.sessions() as s:
                store.register_model(s, version=tagger.version, path=str(path), manifest=tagger.bundle.manifest)
        except SQLAlchemyError as err:
            self._pending = (now, tagger)
            log.warning("model %s loaded but not registered in the database (%s); retrying", tagger.version,
                        type(err).__name__)
            return False
        self._pending = None
        _freeze()
        old = self.state.tagger
        self.state.tagger = tagger  # the swap: requests from now on read the new tagger
        self.serving, self._failed = now, None
        log.info("now serving model %s (%s), was %s", tagger.version, path.name, old.version)
        return True
