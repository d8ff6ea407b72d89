"""Settings read once at start-up from the environment and `.env`."""

from __future__ import annotations

import re
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.core.contribution import Rates
from bot.core.tables import DEFAULT_MAX_MB

LANGUAGES = ("id", "en")
DEFAULT_SQLITE_URL = "sqlite+aiosqlite:///data/bot.db"
_REGENCY_CODE = re.compile(r"^\d{2}\.\d{2}$")
# The Bot API's rule for a webhook's secret_token.
_WEBHOOK_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_LOOPBACK = ("127.0.0.1", "localhost", "::1")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class ConfigError(Exception):
    """A setting has a value the bot cannot start with; the message names it."""


class StartupError(Exception):
    """What a setting points at refused or could not be reached at start-up (the database,
    the Bot API, the webhook port); the message names the setting and the reason."""


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Every setting of the bot; `.env.example` documents each one."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    telegram_bot_token: SecretStr | None = None
    telegram_api_base_url: str | None = None
    telegram_bot_username: str | None = None
    database_url: str = DEFAULT_SQLITE_URL
    # PostgreSQL only: the schema the bot's tables live in (default: the server's search_path).
    database_schema: str | None = None
    branch_regencies: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["51.71", "51.03", "51.08", "51.01", "51.02"]
    )
    admin_telegram_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    data_key: SecretStr | None = None
    # During a key rotation: the previous key(s), comma-separated, still accepted for reading
    # until `python -m bot keys rotate` has re-encrypted everything under DATA_KEY.
    data_key_old: SecretStr | None = None
    default_language: str = "id"
    timezone: str = "Asia/Makassar"
    min_age: int = 18
    max_age: int = 65
    draft_retention_days: int = 30
    # Rejected and withdrawn applications keep their personal data this long after the last
    # change; messages that could not be delivered are kept this long (see retention.py).
    closed_retention_days: int = 365
    undelivered_retention_days: int = 7
    income_options: Annotated[list[int], NoDecode] = Field(
        default_factory=lambda: [1_000_000, 1_500_000, 2_000_000, 2_500_000, 3_000_000, 5_000_000]
    )
    jkk_percent: Decimal = Decimal("1")
    jkm_flat: int = 6800
    jht_percent: Decimal = Decimal("2")
    min_income: int = 1_000_000
    # Messages a second for everything the bot sends (replies first, then broadcasts):
    # just under Telegram's "about 30 a second", since the pacer spaces sends evenly.
    broadcast_rate: float = 29.0
    broadcast_max_attempts: int = 5
    # /ekspor: exports of more rows than this are written in the background and sent when
    # ready, so the person (and their chat's other updates) never wait on a long export.
    export_background_rows: int = 5000
    # Processes that decrypt and format the rows of an export over 5 000 rows beside the one
    # reading them (unset: one per CPU core; 0: all in the reading process). They cost CPU
    # time (1,1 to 1,8 times in all) to save wall time: docs/BENCHMARKS.md.
    export_workers: int | None = Field(default=None, ge=0, le=64)
    # Chats whose updates are handled at the same time (each chat's own in order).
    inbox_workers: int = 8
    # Flood control per person: a burst of this many updates, refilled at this many a minute;
    # beyond it one polite warning, then their updates are dropped for the pause.
    flood_burst: int = 20
    flood_per_minute: float = 30.0
    flood_pause_seconds: float = 60.0
    invitation_days: int = 7
    # The status workflow: digits of a KPJ number (unconfirmed, see bot/core/workflow.py),
    # how long a /tinjau card stays with one staff member, and how many days before a
    # payment falls due the worker is reminded.
    kpj_digits: int = 11
    review_claim_minutes: int = 15
    reminder_days_before: int = 3
    # Guessing limits per person and day: different NIKs tried in their own registration (a
    # leader filling forms for residents is not limited), and wrong /klaim codes.
    nik_tries_per_day: int = 3
    claim_tries_per_day: int = 5
    # The largest file import-status, desa-adat import and targets import read, in MB.
    import_max_mb: int = DEFAULT_MAX_MB
    # The human contact at the end of /bantuan.
    branch_address: str = "Kantor Cabang BPJS Ketenagakerjaan Bali Denpasar"
    call_centre: str = "175"
    log_level: str = "INFO"
    # "text" for people, "json" (one object per line) for a log collector.
    log_format: Literal["text", "json"] = "text"
    # Webhook mode: the public URL Telegram posts to, the secret it sends with every post,
    # and where this process listens (behind a reverse proxy that terminates TLS).
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = 8080

    @field_validator(
        "telegram_bot_token",
        "telegram_api_base_url",
        "telegram_bot_username",
        "data_key",
        "data_key_old",
        "webhook_url",
        "webhook_secret",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # `KEY=` in .env means "not set", as the commented example file has it.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("branch_regencies", mode="before")
    @classmethod
    def _parse_regencies(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("branch_regencies")
    @classmethod
    def _check_regencies(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("needs at least one regency code such as 51.71")
        for code in value:
            if not _REGENCY_CODE.match(code):
                raise ValueError(f"{code!r} is not a regency code like 51.71")
        return value

    @field_validator("admin_telegram_ids", "income_options", mode="before")
    @classmethod
    def _parse_ints(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("default_language")
    @classmethod
    def _check_language(cls, value: str) -> str:
        if value not in LANGUAGES:
            raise ValueError(f"must be one of {', '.join(LANGUAGES)}")
        return value

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return level

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{value!r} is not a known time zone") from exc
        return value

    @field_validator("database_schema")
    @classmethod
    def _check_schema(cls, value: str | None) -> str | None:
        if value and not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", value):
            raise ValueError("must be a plain lower-case PostgreSQL name such as bebas_cemas")
        return value or None

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @field_validator("telegram_api_base_url")
    @classmethod
    def _check_base_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL such as http://127.0.0.1:8081/bot")
        return value or None

    @field_validator("webhook_url")
    @classmethod
    def _check_webhook_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        # Telegram posts to https only; plain http is left for a test server on loopback.
        loopback = parts.scheme == "http" and parts.hostname in _LOOPBACK
        if not parts.hostname or not (parts.scheme == "https" or loopback):
            raise ValueError("must be an https URL such as https://bot.example.org/telegram")
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _check_webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _WEBHOOK_SECRET.match(value.get_secret_value()):
            raise ValueError("must be 1-256 characters, only A-Z, a-z, 0-9, _ and -")
        return value

    @field_validator("webhook_port")
    @classmethod
    def _check_port(cls, value: int) -> int:
        if not 0 < value < 65536:
            raise ValueError("must be a TCP port between 1 and 65535")
        return value

    @field_validator(
        "min_age",
        "max_age",
        "draft_retention_days",
        "closed_retention_days",
        "undelivered_retention_days",
        "min_income",
        "jkm_flat",
        "broadcast_rate",
        "broadcast_max_attempts",
        "invitation_days",
        "kpj_digits",
        "review_claim_minutes",
        "reminder_days_before",
        "nik_tries_per_day",
        "claim_tries_per_day",
        "import_max_mb",
        "inbox_workers",
        "flood_burst",
        "flood_per_minute",
        "flood_pause_seconds",
    )
    @classmethod
    def _check_positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("must be a positive number")
        return value

    @property
    def webhook_path(self) -> str:
        """The path of WEBHOOK_URL, where the webhook app takes Telegram's posts."""
        return urlsplit(self.webhook_url or "").path or "/"

    @cached_property
    def tz(self) -> ZoneInfo:
        """The configured time zone."""
        return ZoneInfo(self.timezone)

    @property
    def rates(self) -> Rates:
        """Contribution rates as configured."""
        return Rates(
            jkk_percent=self.jkk_percent,
            jkm_flat=self.jkm_flat,
            jht_percent=self.jht_percent,
            min_income=self.min_income,
        )

    @property
    def is_sqlite(self) -> bool:
        """Whether the database is the embedded SQLite file."""
        return self.database_url.startswith("sqlite")

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite database file, or None for PostgreSQL or an in-memory database."""
        if not self.is_sqlite:
            return None
        path = self.database_url.split("///", 1)[1] if "///" in self.database_url else ""
        return Path(path) if path and path != ":memory:" else None


def load_settings(**overrides: object) -> Settings:
    """Read the settings, turning a bad value into one ConfigError naming the setting."""
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][0]).upper() if error["loc"] else "settings"
        message = str(error["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"{name}: {message}") from None
    if settings.min_age >= settings.max_age:
        raise ConfigError("MIN_AGE: must be lower than MAX_AGE")
    return settings
