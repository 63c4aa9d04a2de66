"""Hotspots in the service: stored groups, their queries, and the refresher that groups
appeals as they are stored (ADR 0006).

One :class:`HotspotRefresher` runs in each server process (a thread), but only the one
holding the **lease** (the ``hotspot_state`` row: holder and expiry) groups: every few
seconds it adds the appeals stored since its last position to an in-memory
:class:`models.hotspots.HotspotGrouper` and writes their assignments and each touched
group's row in one transaction, which also renews the lease and moves the position —
but only while the row still names it as holder at the position it knows (a fenced
compare-and-set), so a holder that stalled past its lease and was replaced writes
nothing. A process that takes the lease (at start, or when the holder died and its lease
expired) first rebuilds the grouper from the stored assignments of the groups still open
(last appeal within ``window_days`` of the newest), seeding each appeal into its stored
group, so group ids stay stable and history is not re-clustered.

The API reads groups from the database only, so every worker answers alike.
"""
from __future__ import annotations

import base64
import logging
import math
import os
import random
import re
import socket
import threading
import time as clock
import uuid
from contextlib import nullcontext
from datetime import datetime, timedelta, timezone

from sqlalchemy import (JSON, Boolean, Float, ForeignKey, Integer, String, Text, and_, bindparam, delete,
                        exists, func, insert, or_, select, update)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, Session, mapped_column

from corpora.text import join_title, normalise
from service.db import Appeal, Base, Instant, utcnow

__all__ = ["HotspotGroup", "HotspotGroupDistrict", "HotspotAssignment", "HotspotState", "HotspotRefresher",
           "LeaseLost", "appeal_hotspot", "list_groups", "get_group", "encode_cursor", "decode_cursor",
           "GROUP_ID"]

log = logging.getLogger(__name__)

STATE = "hotspots"  # the name of the lease row (one grouping stream per database)
GROUP_ID = re.compile(r"^g[0-9]{6,18}$")


class HotspotGroup(Base):
    """One group of appeals about one problem in one place (singletons included); the
    ``heat`` is as of the newest appeal the refresher had seen when it wrote the row."""
    __tablename__ = "hotspot_groups"
    id: Mapped[str] = mapped_column(String(24), primary_key=True)  # g000001 …, never reused
    size: Mapped[int] = mapped_column(Integer)
    people: Mapped[int] = mapped_column(Integer)
    place: Mapped[str | None] = mapped_column(String(128))           # redacted
    first_time: Mapped[datetime | None] = mapped_column(Instant())
    last_time: Mapped[datetime | None] = mapped_column(Instant(), index=True)
    heat: Mapped[float] = mapped_column(Float, index=True)
    summary: Mapped[str] = mapped_column(Text)                         # redacted
    keywords: Mapped[list] = mapped_column(JSON)
    districts: Mapped[list] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(Instant(), default=utcnow)


class HotspotGroupDistrict(Base):
    """The districts of a group, one row each, for ``GET /v1/hotspots?district=``."""
    __tablename__ = "hotspot_group_districts"
    group_id: Mapped[str] = mapped_column(ForeignKey("hotspot_groups.id", ondelete="CASCADE"), primary_key=True)
    district: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


class HotspotAssignment(Base):
    """An appeal's group (None: the appeal has no letters or digits to group by)."""
    __tablename__ = "hotspot_assignments"
    appeal_id: Mapped[str] = mapped_column(ForeignKey("appeals.id", ondelete="CASCADE"), primary_key=True)
    group_id: Mapped[str | None] = mapped_column(ForeignKey("hotspot_groups.id", ondelete="CASCADE"), index=True)
    repeat: Mapped[bool] = mapped_column(Boolean)
    repeat_of: Mapped[list] = mapped_column(JSON)
    assigned_at: Mapped[datetime] = mapped_column(Instant(), default=utcnow)


class HotspotState(Base):
    """The grouping stream's lease and progress: who groups (``holder`` until
    ``lease_until``), the appeals ``seq`` up to which every appeal is assigned
    (``position``), and the next group number."""
    __tablename__ = "hotspot_state"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None] = mapped_column(Instant())
    position: Mapped[int] = mapped_column(Integer)
    next_group: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime | None] = mapped_column(Instant())


# --- reading (the API) ----------------------------------------------------------------------

def appeal_hotspot(session: Session, *, appeal_id: str) -> dict | None:
    """The group of an appeal, or None when it has not been grouped (yet)."""
    row = session.execute(
        select(HotspotAssignment.repeat, HotspotAssignment.repeat_of, HotspotGroup)
        .join(HotspotGroup, HotspotGroup.id == HotspotAssignment.group_id)
        .where(HotspotAssignment.appeal_id == appeal_id)).first()
    if row is None:
        return None
    repeat, repeat_of, g = row
    return {"group_id": g.id, "place": g.place, "size": g.size, "heat": g.heat, "summary": g.summary,
            "repeat": repeat, "repeat_of": repeat_of or []}


def encode_cursor(heat: float, group_id: str) -> str:
    return base64.urlsafe_b64encode(f"h{heat!r}:{group_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        heat_text, _, group_id = raw[1:].partition(":")
        if not raw.startswith("h") or len(raw) > 64 or not GROUP_ID.match(group_id):
            raise ValueError
        heat = float(heat_text)
        if not (math.isfinite(heat) and 0 <= heat <= 100):
            raise ValueError
        return heat, group_id
    except (ValueError, UnicodeDecodeError):
        raise ValueError("cursor is not one this service returned") from None


def list_groups(session: Session, *, since: datetime | None = None, until: datetime | None = None,
                district: str | None = None, min_size: int = 2, after: tuple[float, str] | None = None,
                limit: int = 100) -> tuple[list[HotspotGroup], str | None]:
    """Groups of at least ``min_size`` appeals active in [``since``, ``until``) (their first
    appeal before ``until``, their last at or after ``since``), with an appeal in
    ``district`` when given; hottest first (then by id). ``after``: the cursor's (heat, id)."""
    q = select(HotspotGroup).where(HotspotGroup.size >= min_size)
    if since is not None:
        q = q.where(HotspotGroup.last_time >= since)
    if until is not None:
        q = q.where(HotspotGroup.first_time < until)
    if district is not None:
        q = q.where(exists().where(HotspotGroupDistrict.group_id == HotspotGroup.id,
                                   HotspotGroupDistrict.district == normalise(district)))
    if after is not None:
        heat, gid = after
        q = q.where(or_(HotspotGroup.heat < heat, and_(HotspotGroup.heat == heat, HotspotGroup.id > gid)))
    rows = list(session.scalars(q.order_by(HotspotGroup.heat.desc(), HotspotGroup.id).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (encode_cursor(rows[-1].heat, rows[-1].id) if more and rows else None)


def get_group(session: Session, *, group_id: str):
    """(group, its assignments in time order as (appeal id, repeat, repeat_of)) or None."""
    g = session.get(HotspotGroup, group_id)
    if g is None:
        return None
    members = session.execute(
        select(HotspotAssignment.appeal_id, HotspotAssignment.repeat, HotspotAssignment.repeat_of)
        .join(Appeal, Appeal.id == HotspotAssignment.appeal_id)
        .where(HotspotAssignment.group_id == group_id)
        .order_by(func.coalesce(Appeal.time, Appeal.received_at), Appeal.seq)).all()
    return g, [tuple(m) for m in members]


# --- grouping (the refresher) ---------------------------------------------------------------

class LeaseLost(RuntimeError):
    """The lease row no longer names this refresher (at the position it knows)."""


def _utc(iso: str | None) -> datetime | None:
    """A time of HotspotGrouper's output (naive ISO, UTC) as an aware datetime."""
    return datetime.fromisoformat(iso).replace(tzinfo=timezone.utc) if iso else None


_APPEAL_FIELDS = (Appeal.seq, Appeal.id, Appeal.time, Appeal.received_at, Appeal.title, Appeal.text,
                  Appeal.district, Appeal.user, Appeal.urgency)


class HotspotRefresher:
    """Groups the stored appeals into hotspots while it holds the lease; see the module docstring.

    Parameters
    ----------
    engine : sqlalchemy.engine.Engine
        The service's database.
    write_lock : context manager, optional
        Held around each write transaction (``service.db.WriteLock``: SQLite writers queue
        on it instead of in SQLite's busy handler).
    interval_s : float
        Seconds between refreshes of the background thread (:meth:`start`).
    lease_s : float
        How long a lease lasts unless renewed; a holder that dies is replaced this long
        after its last renewal at the latest. Every write renews it.
    batch : int
        Appeals read and written per transaction.
    settle_s : float
        The position (``seq``) passes an appeal only once it was stored this long ago: on
        PostgreSQL a lower ``seq`` can commit after a higher one, and is found by the
        look-up of unassigned appeals above the position in the meantime.
    grouper : callable
        Makes the empty grouper (``models.hotspots.HotspotGrouper``).
    holder : str, optional
        This refresher's name in the lease row (default: host, process id and a random part).
    """

    def __init__(self, engine: Engine, *, write_lock=None, interval_s: float = 2.0, lease_s: float = 30.0,
                 batch: int = 500, settle_s: float = 10.0, grouper=None, holder: str | None = None):
        from models.hotspots import HotspotGrouper

        self.engine = engine
        self.write_lock = write_lock if write_lock is not None else nullcontext()
        self.interval_s = interval_s
        self.lease_s = lease_s
        self.batch = batch
        self.settle_s = settle_s
        self.make_grouper = grouper or HotspotGrouper
        self.holder = holder or f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._lock = threading.Lock()  # one tick at a time in this process
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._grouper = None
        self._holding = False
        self._position = 0
        self._next_group = 1
        self._to_db: dict[str, str] = {}  # the grouper's group id -> the stored id
        self._in_memory = 0
        self._loaded = 0
        self._described_day: int | None = None
        self._newest: datetime | None = None  # the newest appeal time grouped: the stream's clock
        self._renewed = 0.0

    # --- the thread -----------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="suqiu-hotspots", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        # a random first wait, so that workers started together do not contend in step
        wait = self.interval_s * random.uniform(0.5, 1.0)
        while not self._stop.wait(wait):
            try:
                self.tick()
            except Exception:  # noqa: BLE001 — the thread must go on; tick() left a consistent state
                log.exception("hotspot refresh failed")
            wait = self.interval_s

    def stop(self, *, timeout: float = 10.0) -> None:
        """Stop the thread and give the lease up, so another process takes over at once."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.release()

    def release(self) -> None:
        try:
            with self.write_lock, self.engine.connect() as c:
                c.execute(update(HotspotState).where(HotspotState.name == STATE, HotspotState.holder == self.holder)
                          .values(holder=None, lease_until=None))
                c.commit()
        except Exception:  # noqa: BLE001 — the lease then expires on its own
            log.warning("could not release the hotspot lease", exc_info=True)
        self._holding = False
        self._grouper = None

    @property
    def holding(self) -> bool:
        return self._holding

    # --- one refresh ----------------------------------------------------------------------
    def tick(self) -> int:
        """Take or renew the lease; when holding it, group the appeals stored since the last
        position and write them. Returns the number of appeals assigned (0 when another
        process holds the lease). Any failure drops the in-memory grouper (rebuilt from the
        database next time), so memory never holds what the database does not."""
        with self._lock:
            try:
                if not self._holding:
                    if not self._acquire():
                        return 0
                    self._grouper = None
                if self._grouper is None:
                    self._rebuild()
                assigned, deadline = 0, clock.monotonic() + max(self.interval_s, 1.0)
                while not self._stop.is_set():
                    n, more = self._step()
                    assigned += n
                    if not more or clock.monotonic() > deadline:
                        break
                if self._in_memory > 2 * self._loaded + 50_000:
                    self._grouper = None  # closed groups are dropped by the next rebuild
                return assigned
            except LeaseLost:
                log.info("hotspot lease lost by %s", self.holder)
                self._holding, self._grouper = False, None
                return 0
            except BaseException:
                self._grouper = None
                raise

    def _acquire(self) -> bool:
        now = utcnow()
        with self.engine.connect() as c:
            row = c.execute(select(HotspotState.holder, HotspotState.lease_until)
                            .where(HotspotState.name == STATE)).first()
            c.rollback()
        if row is None:
            raise RuntimeError("no hotspot_state row: run `suqiu db upgrade`")
        if row.holder not in (None, self.holder) and row.lease_until is not None and row.lease_until >= now:
            return False
        with self.write_lock, self.engine.connect() as c:
            done = c.execute(update(HotspotState).where(
                HotspotState.name == STATE,
                or_(HotspotState.holder.is_(None), HotspotState.holder == self.holder,
                    HotspotState.lease_until.is_(None), HotspotState.lease_until < now))
                .values(holder=self.holder, lease_until=now + timedelta(seconds=self.lease_s), updated_at=now))
            c.commit()
        self._holding = done.rowcount == 1
        self._renewed = clock.monotonic()
        if self._holding:
            log.info("hotspot lease taken by %s", self.holder)
        return self._holding

    def _fence(self, c, *, position: int, next_group: int) -> None:
        """In the open transaction on ``c``: renew the lease and record progress, only if the
        row still names this holder at the position and group number it knows."""
        now = utcnow()
        done = c.execute(update(HotspotState).where(
            HotspotState.name == STATE, HotspotState.holder == self.holder,
            HotspotState.position == self._position, HotspotState.next_group == self._next_group)
            .values(lease_until=now + timedelta(seconds=self.lease_s), position=position, next_group=next_group,
                    updated_at=now))
        if done.rowcount != 1:
            c.rollback()
            raise LeaseLost(self.holder)
        self._renewed = clock.monotonic()

    def _renew(self) -> None:
        with self.write_lock, self.engine.connect() as c:
            self._fence(c, position=self._position, next_group=self._next_group)
            c.commit()

    def _rebuild(self) -> None:
        """A new grouper holding the stored appeals of the groups still open, each seeded
        into its stored group, in the order they were first grouped (``seq``)."""
        grouper = self.make_grouper()
        self._newest = None
        with self.engine.connect() as c:
            state = c.execute(select(HotspotState).where(HotspotState.name == STATE)).first()
            newest = c.execute(select(func.max(HotspotGroup.last_time))).scalar()
            c.rollback()
        if state is None or state.holder != self.holder:
            raise LeaseLost(self.holder)
        self._position, self._next_group = state.position, state.next_group
        to_db, n, started = {}, 0, clock.monotonic()
        if newest is not None:
            # groups that can still grow: within the window (or the same-place window, when longer)
            days = max(float(grouper.window_days), float(getattr(grouper, "place_window_days", 0) or 0))
            horizon = newest - timedelta(days=days + 1)
            q = (select(*_APPEAL_FIELDS, HotspotAssignment.group_id, HotspotAssignment.repeat,
                        HotspotAssignment.repeat_of)
                 .join(HotspotAssignment, HotspotAssignment.appeal_id == Appeal.id)
                 .join(HotspotGroup, HotspotGroup.id == HotspotAssignment.group_id)
                 .where(HotspotGroup.last_time >= horizon).order_by(Appeal.seq))
            with self.engine.connect() as c:
                for r in c.execution_options(yield_per=2000).execute(q):
                    if self._stop.is_set():
                        raise LeaseLost(self.holder)
                    self._saw(r.time or r.received_at)
                    try:
                        gid = grouper.seed(r.id, r.time or r.received_at, join_title(r.title, r.text),
                                           group=r.group_id, district=r.district, user=r.user, urgency=r.urgency,
                                           repeat=r.repeat, repeat_of=r.repeat_of or [])
                    except ValueError:  # cannot happen for an appeal once grouped; never fatal
                        continue
                    to_db[gid] = r.group_id
                    n += 1
                    if clock.monotonic() - self._renewed > self.lease_s / 3:
                        self._renew()
                c.rollback()
        self._grouper, self._to_db, self._in_memory, self._loaded = grouper, to_db, n, n
        self._described_day = None
        log.info("hotspot grouper rebuilt from %d stored appeals in %.1f s", n, clock.monotonic() - started)

    def _step(self) -> tuple[int, bool]:
        """Group one batch of unassigned appeals above the position and write it (fenced).
        Returns (appeals assigned, whether more may be waiting)."""
        now = utcnow()
        with self.engine.connect() as c:
            settled = c.execute(select(func.max(Appeal.seq)).where(
                Appeal.seq > self._position, Appeal.received_at < now - timedelta(seconds=self.settle_s))).scalar()
            rows = c.execute(select(*_APPEAL_FIELDS)
                             .outerjoin(HotspotAssignment, HotspotAssignment.appeal_id == Appeal.id)
                             .where(Appeal.seq > self._position, HotspotAssignment.appeal_id.is_(None))
                             .order_by(Appeal.seq).limit(self.batch)).all()
            c.rollback()
        more = len(rows) == self.batch
        position = self._position
        if settled is not None:
            position = max(position, min(settled, rows[-1].seq) if more else settled)
        grouper = self._grouper
        assignments, touched = [], set()
        for r in rows:
            self._saw(r.time or r.received_at)
            try:
                gid = grouper.add(r.id, r.time or r.received_at, join_title(r.title, r.text), district=r.district,
                                  user=r.user, urgency=r.urgency)
            except ValueError:  # nothing to group by (no letters or digits)
                assignments.append({"appeal_id": r.id, "group_id": None, "repeat": False, "repeat_of": []})
                continue
            touched.add(gid)
            info = grouper.appeal(r.id)
            assignments.append({"appeal_id": r.id, "group_id": gid, "repeat": info["repeat"],
                                "repeat_of": info["repeat_of"]})
        self._in_memory += len(rows)
        next_group, to_db, new = self._next_group, dict(self._to_db), set()
        for gid in sorted(touched, key=lambda g: int(g[1:])):
            if gid not in to_db:
                to_db[gid] = f"g{next_group:06d}"
                next_group += 1
                new.add(gid)
        described = [grouper.group(gid) for gid in touched]
        day = int(self._newest.timestamp() // 86400) if self._newest is not None else None
        if day is not None and day != self._described_day:  # heat moves with the days: rewrite every group
            described = grouper.groups(min_size=2) + [d for d in described if d["size"] < 2]
        for a in assignments:
            if a["group_id"] is not None:
                a["group_id"] = to_db[a["group_id"]]
        if not assignments and position == self._position and described == []:
            if clock.monotonic() - self._renewed > self.lease_s / 3:
                self._renew()
            return 0, False
        self._write(now, assignments, described, new, to_db, position=position, next_group=next_group)
        self._position, self._next_group, self._to_db = position, next_group, to_db
        if day is not None:
            self._described_day = day
        return len(assignments), more

    def _saw(self, when: datetime | None) -> None:
        if when is not None and (self._newest is None or when > self._newest):
            self._newest = when

    def _write(self, now, assignments, described, new, to_db, *, position, next_group) -> None:
        rows, districts = [], []
        for d in described:
            gid = to_db[d["group_id"]]
            rows.append({"id": gid, "size": d["size"], "people": d["people"], "place": (d["place"] or None) and
                         d["place"][:128], "first_time": _utc(d["first_time"]), "last_time": _utc(d["last_time"]),
                         "heat": d["heat"], "summary": d["summary"], "keywords": d["keywords"],
                         "districts": d["districts"], "updated_at": now})
            districts += [{"group_id": gid, "district": x[:64]} for x in dict.fromkeys(d["districts"])]
        new_ids = {to_db[g] for g in new}
        with self.write_lock, self.engine.connect() as c:
            self._fence(c, position=position, next_group=next_group)
            inserts = [r for r in rows if r["id"] in new_ids]
            updates = [{**{k: v for k, v in r.items() if k != "id"}, "b_id": r["id"]} for r in rows
                       if r["id"] not in new_ids]
            if inserts:
                c.execute(insert(HotspotGroup.__table__), inserts)
            if updates:
                t = HotspotGroup.__table__
                c.execute(update(t).where(t.c.id == bindparam("b_id")), updates)
            if rows:
                c.execute(delete(HotspotGroupDistrict).where(HotspotGroupDistrict.group_id.in_([r["id"] for r in rows])))
            if districts:
                c.execute(insert(HotspotGroupDistrict.__table__), districts)
            if assignments:
                c.execute(insert(HotspotAssignment.__table__), [{**a, "assigned_at": now} for a in assignments])
            c.commit()
