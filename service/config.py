"""Service settings: one ``Settings`` object, read from ``SUQIU_*`` environment variables."""
from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parents[1]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SUQIU_", env_file=".env", extra="ignore")

    database_url: str = f"sqlite:///{ROOT / 'var' / 'suqiu.db'}"
    registry_dir: Path = ROOT / "models" / "registry"
    model_dir: Path | None = None  # default: the registry's CURRENT version
    max_text_chars: int = 20_000
    max_batch: int = 1_000
    group_linger_ms: float = Field(3.0, ge=0)  # service/batcher.py
    max_body_bytes: int = 8 * 1024 * 1024
    page_size_max: int = 500
    city: str | None = None  # deadline rules (corpora/data/sla.csv); default: the bundle's
    key_cache_seconds: float = 10.0  # a revoked key stops working within this time
    timezone: str = "Asia/Shanghai"  # the zone of appeal times sent without an offset
    api_docs: bool = True  # /docs, /redoc and /openapi.json without a key (they hold no data); False turns them off

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as 'Asia/Shanghai'") from None
        return value

