"""Service settings: one ``Settings`` object, read from ``SUQIU_*`` environment variables."""
from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.registry import REGISTRY_DIR

ROOT = Path(__file__).resolve().parents[1]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SUQIU_", env_file=".env", extra="ignore")

    database_url: str = f"sqlite:///{ROOT / 'var' / 'suqiu.db'}"
    registry_dir: Path = REGISTRY_DIR  # every command and the service read the registry here
    model_dir: Path | None = None  # default: the registry's CURRENT version; set, it pins the model (no swap)
    model_poll_s: float = Field(1.0, gt=0, le=3600)  # each server process checks CURRENT this often (ADR 0007)
    torch_threads: int = Field(1, ge=1, le=256)  # an encoder backend's threads in each server process (ADR 0009)
    max_text_chars: int = 20_000
    max_batch: int = 1_000
    group_linger_ms: float = Field(3.0, ge=0)  # service/batcher.py
    max_body_bytes: int = 8 * 1024 * 1024
    page_size_max: int = 500
    city: str | None = None  # deadline rules (corpora/data/sla.csv); default: the bundle's
    key_cache_seconds: float = 10.0  # a revoked key stops working within this time
    timezone: str = "Asia/Shanghai"  # the zone of appeal times sent without an offset
    # slow or oversized clients (service/guard.py); per server process
    header_timeout_s: float = Field(10.0, gt=0)  # request line and headers must arrive within this
    body_timeout_s: float = Field(60.0, gt=0)  # the body, once the headers are in
    max_header_bytes: int = Field(64 * 1024, ge=1024)  # 431 above
    max_connections: int = Field(1000, ge=1)  # connections and tasks; 503 above
    api_docs: bool = True  # /docs, /redoc and /openapi.json without a key (they hold no data); False turns them off
    # hotspots (service/hotspot_store.py, ADR 0006): one process at a time groups stored appeals
    hotspots: bool = True  # on / off: group appeals in the background (the endpoints read what is stored)
    hotspots_interval_s: float = Field(2.0, gt=0, le=3600)  # seconds between refreshes
    hotspots_lease_s: float = Field(30.0, gt=0)  # a dead grouping process is replaced after at most this
    # the digest keeps parsed rows and per-text features of the history (appeal texts, owner-only)
    # in var/digest_cache, so next week's digest reads only what is new (service/digest_cache.py)
    digest_cache: bool = True
    # retraining (training/retrain.py): base training files for POST /v1/models/retrain (JSON lists,
    # e.g. SUQIU_RETRAIN_DATA='["data/appeals.csv"]'), and the gate that judges a challenger
    retrain_data: list[Path] = []
    retrain_urgency_data: list[Path] = []
    retrain_macro_f1_tolerance: float = 0.005  # the challenger's held-out macro-F1 may trail by at most this
    retrain_critical_recall_tolerance: float = 0.0  # ... its critical appeals caught by at most this
    retrain_max_category_drop: float = 0.05  # no category's held-out F1 may drop by more than this ...
    retrain_min_category_support: int = 10  # ... among categories with this many held-out appeals
    retrain_min_heldout: int = 50  # fewer held-out appeals cannot show a challenger is not worse
    retrain_max_suspect_share: float = 0.35  # new labels that look like label errors above this share (or twice
    # the base data's share, if higher): review them first
    retrain_newest_share: float = 0.2  # the newest human labels held out
    retrain_holdout_share: float = 0.2  # and this grouped share of the other unseen labelled appeals

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as 'Asia/Shanghai'") from None
        return value

    @model_validator(mode="after")
    def _lease_outlasts_refresh(self):
        if self.hotspots_lease_s <= 2 * self.hotspots_interval_s:
            raise ValueError(f"hotspots_lease_s ({self.hotspots_lease_s}) must exceed twice hotspots_interval_s "
                             f"({self.hotspots_interval_s}): the holder renews its lease at each refresh")
        return self

    @model_validator(mode="after")
    def _gate_in_range(self):
        self.gate_policy()  # ValueError naming the setting out of range
        return self

    def gate_policy(self):
        """The retraining gate these settings describe (training.retrain.GatePolicy)."""
        from dataclasses import fields

        from training.retrain import GatePolicy

        try:
            return GatePolicy(**{f.name: getattr(self, f"retrain_{f.name}") for f in fields(GatePolicy)})
        except ValueError as err:
            raise ValueError(f"SUQIU_RETRAIN_{str(err).upper().split(' ', 1)[0]} {str(err).split(' ', 1)[1]}") from None

    def uvicorn_options(self) -> dict:
        """What ``uvicorn.Config`` takes of these settings: the guarded protocol and the
        connection cap (service/guard.py)."""
        from service.guard import guarded_protocol

        return {"http": guarded_protocol(header_timeout=self.header_timeout_s, body_timeout=self.body_timeout_s,
                                         max_header_bytes=self.max_header_bytes),
                "limit_concurrency": self.max_connections}
