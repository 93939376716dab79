"""Configuration from the environment (and ``.env``), built once in ``main()``.

The variable names are a contract (DESIGN.md). Every setting has a working default except
secrets; placeholder or malformed secrets are refused with a message in plain words.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.crypto import DataCipher, decode_key
from core.errors import ConfigurationError
from core.i18n import LANGUAGES, is_language, negotiate

DEFAULT_MODEL = "gpt-image-2"
"""The image model used when ``IMAGEBOT_IMAGE_MODEL`` is not set."""

_PLACEHOLDER = re.compile(
    r"(your|changeme|change-me|replace|placeholder|example|xxx|\*\*\*|\.\.\.|<|>|\s|^sk-$|^test$)",
    re.IGNORECASE,
)
OPENAI_KEY_MIN_LENGTH = 20
"""Shorter keys are placeholders: OpenAI's are 50 characters and more, and an
OpenAI-compatible server's key is still a secret, not a word."""
_TELEGRAM_TOKEN = re.compile(r"^\d{3,}:[A-Za-z0-9_-]{30,}$")
_DISCORD_TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{20,}$")


def _secret(
    value: SecretStr | None, name: str, pattern: re.Pattern[str] | None = None, hint: str = ""
) -> SecretStr | None:
    if value is None:
        return None
    raw = value.get_secret_value().strip()
    if not raw:
        return None
    # The messages do not repeat ``name``: load_settings puts the variable's name first.
    if _PLACEHOLDER.search(raw):
        raise ValueError("looks like a placeholder, not a real secret")
    if pattern is not None and not pattern.match(raw):
        raise ValueError(f"is malformed{': ' + hint if hint else ''}")
    return SecretStr(raw)


class Settings(BaseSettings):
    """Every setting of imagebot. Build it with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix="IMAGEBOT_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    database_url: str = "sqlite+aiosqlite:///./data/imagebot.db"
    database_schema: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
    """PostgreSQL schema to use (several installations, or tests, sharing one database)."""
    data_dir: Path = Path("./data")
    file_store: Literal["local", "s3"] = "local"
    """Where images and exports live: ``local`` (IMAGEBOT_DATA_DIR) or ``s3``."""
    s3_bucket: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    s3_endpoint_url: str | None = None
    """An S3-compatible store's endpoint (MinIO, R2, B2, Wasabi, Ceph); unset: AWS S3."""
    s3_region: str | None = None
    s3_prefix: str = Field(default="", pattern=r"^([A-Za-z0-9][A-Za-z0-9._-]*/)*$")
    """Key prefix inside the bucket, ending with ``/`` (several installations, one bucket)."""
    download_link_seconds: int = Field(default=900, ge=30, le=7 * 24 * 3600)
    """How long a presigned download URL of the S3 store stays valid."""

    telegram_token: SecretStr | None = None
    telegram_api_url: str | None = None
    discord_token: SecretStr | None = None
    discord_api_url: str | None = None
    discord_gateway_url: str | None = None
    telegram_webhook_url: str | None = None
    """Public HTTPS URL Telegram posts updates to; unset means long polling."""
    telegram_webhook_secret: SecretStr | None = None
    """Secret Telegram sends with each webhook request; generated when unset."""
    telegram_rate_limit: bool = True
    """Pace outgoing Telegram calls within Telegram's limits (about 30 messages a second)."""
    discord_guild_id: str | None = None
    """Sync commands to this server only (instant updates while developing)."""
    discord_shard_count: int | None = Field(default=None, ge=1)
    discord_shard_ids: str = ""
    """Shards this process runs, e.g. ``0,1``; empty means all."""
    public_url: str | None = None
    """Where imagebot's HTTP server is reachable from outside (checkout return pages, links)."""
    support_chat: str | None = None
    """Where /feedback and /support messages go, as ``telegram:<chat id>``."""

    openai_api_key: SecretStr | None = Field(default=None, validation_alias="OPENAI_API_KEY")
    openai_base_url: str | None = Field(default=None, validation_alias="OPENAI_BASE_URL")
    image_model: str = DEFAULT_MODEL
    image_provider: Literal["openai", "demo"] | None = None
    """``None`` means not chosen: ``openai``, except that the console falls back to demo."""
    models: str = ""
    """``IMAGEBOT_MODELS``: the models users may choose, first the default; names separated
    by commas, or JSON entries ``{"model", "base_url", "api_key_env"}`` for a model served by
    its own OpenAI-compatible provider. Empty: ``IMAGEBOT_IMAGE_MODEL`` only."""
    models_file: Path | None = None
    """``IMAGEBOT_MODELS_FILE``: an operator catalog (TOML or JSON) over the shipped one."""
    image_moderation: Literal["auto", "low"] = "auto"
    """The image service's own moderation strictness sent with each generation."""
    output_compression: int | None = Field(default=None, ge=0, le=100)
    """Compression (0-100) of JPEG and WebP results; unset: the provider's default (100)."""
    input_fidelity: Literal["low", "high"] | None = None
    """How closely edits keep the reference images' details, on models that take it."""
    model_check_hours: float = Field(default=24.0, gt=0)
    """How often the provider's model list is read again (shutdown dates, retirements)."""

    stripe_secret_key: SecretStr | None = None
    stripe_webhook_secret: SecretStr | None = None
    stripe_api_url: str | None = None
    stripe_checkout_expiry_minutes: int = Field(default=60, ge=30, le=1440)
    """How long a checkout link stays open (Stripe accepts 30 minutes to 24 hours)."""
    stripe_max_network_retries: int = Field(default=2, ge=0, le=10)
    """Retries of Stripe API calls that failed on the network, 409 or 5xx."""

    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    admins: str = ""
    free_credits: int = Field(default=20, ge=0)
    default_language: str = Field(default="en", min_length=2, max_length=16)
    """The language when the platform gives none the bot has (``IMAGEBOT_DEFAULT_LANGUAGE``)."""
    encryption_key: SecretStr | None = None

    encryption_old_keys: SecretStr | None = None
    """Earlier keys, comma-separated, still accepted for reading during a rotation."""

    # The operator's published policy (P15, P22).
    policy_url: str = ""
    policy_version: str = Field(default="1", min_length=1, max_length=32)
    policy_effective_date: str = Field(default="2026-01-01", pattern=r"^\d{4}-\d{2}-\d{2}$")
    require_terms: bool = True
    """Ask every new user to accept the terms and confirm their age before generating."""

    offers: str = ""
    """Credit packs and plans as JSON (see core/billing/offers.py); empty: the built-in ones."""
    telegram_payments: Literal["stars", "stripe", "both"] = "stars"
    """How Telegram users pay: Telegram Stars (Telegram's rule for digital goods), Stripe
    Checkout links, or both."""
    discord_payments: Literal["stripe", "premium", "both"] = "stripe"
    """How Discord users pay: Stripe Checkout links, Discord premium (SKUs), or both."""

    moderation: bool = True
    """Screen prompts, reference images and outputs with the provider's moderation endpoint."""
    moderation_model: str = "omni-moderation-latest"
    moderation_fail_mode: Literal["closed", "open"] = "closed"
    """When the moderation endpoint is down: refuse (closed) or let requests through (open)."""
    moderation_thresholds: str = ""
    """JSON of category -> score at or above which a request is refused, besides ``flagged``."""
    moderate_outputs: bool = True
    rate_user_per_minute: float = Field(default=6.0, gt=0)
    rate_user_burst: int = Field(default=5, ge=1)
    rate_chat_per_minute: float = Field(default=30.0, gt=0)
    rate_chat_burst: int = Field(default=20, ge=1)
    rate_chat_platforms: str = Field(default="", pattern=r"^[a-z, ]*$")
    """Platforms whose servers/groups get a request cap of ``rate_chat_*`` (comma list,
    e.g. ``telegram``); default none: a busy chat is served, and only sending is paced.
    A server's admins can set their own cap with ``/server rate``."""
    telegram_group_sends_per_minute: float = Field(default=20.0, gt=0, le=60)
    """Messages (sends and edits) the bot makes in one Telegram group a minute."""
    strikes_temp_ban: int = Field(default=3, ge=1)
    strikes_permanent_ban: int = Field(default=6, ge=1)
    temp_ban_hours: float = Field(default=24.0, gt=0)
    blocklist: str = ""
    """Words or regular expressions refused in prompts, as a JSON list."""
    retention: str = ""
    """Retention periods in days per category, JSON (core/privacy/retention.py); empty: defaults."""
    retention_interval_minutes: float = Field(default=60.0, gt=0)
    log_dir: Path | None = None
    """Write operational logs here too, one file a day, pruned by the retention sweep."""

    # Beyond the contract: tuning with safe defaults.
    prices: str = ""
    worker_concurrency: int = Field(default=64, ge=1, le=1024)
    worker_memory_mb: int | None = Field(default=None, ge=64)
    """Memory the images of this process's model calls in flight may hold, in MiB (each
    call reserves an estimate before it starts); default: half of what is available when
    the process starts."""
    per_user_concurrency: int = Field(default=2, ge=1, le=64)
    max_queued_per_user: int = Field(default=20, ge=1)
    provider_max_retries: int = Field(default=2, ge=0, le=10)
    provider_timeout_seconds: float = Field(default=240.0, gt=0)
    partial_images: int = Field(default=2, ge=0, le=3)
    max_input_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    max_input_pixels: int = Field(default=50_000_000, ge=1024)
    max_job_attempts: int = Field(default=3, ge=1)
    shutdown_grace_seconds: float = Field(default=30.0, ge=0)
    """On SIGTERM, how long running jobs may finish before they go back to the queue."""
    uvloop: bool = True
    """``imagebot run`` on uvloop's event loop (measured: about a tenth less CPU per job
    through the Telegram adapter); off, or where uvloop is not installed, asyncio's own."""
    worker_name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,40}$")
    """This process's worker name in job leases and logs (default: random)."""
    lease_seconds: float = Field(default=60.0, gt=0)
    """How long a worker holds a job without a heartbeat before another may take it."""
    log_level: str = "INFO"

    @field_validator("telegram_token")
    @classmethod
    def _telegram(cls, v: SecretStr | None) -> SecretStr | None:
        return _secret(
            v,
            "IMAGEBOT_TELEGRAM_TOKEN",
            _TELEGRAM_TOKEN,
            "it should look like 123456:ABC-DEF... as given by @BotFather",
        )

    @field_validator("discord_token")
    @classmethod
    def _discord(cls, v: SecretStr | None) -> SecretStr | None:
        return _secret(
            v,
            "IMAGEBOT_DISCORD_TOKEN",
            _DISCORD_TOKEN,
            "copy the bot token from the Developer Portal (three dot-separated parts)",
        )

    @field_validator("default_language")
    @classmethod
    def _language(cls, v: str) -> str:
        if not is_language(v):
            raise ValueError(
                "IMAGEBOT_DEFAULT_LANGUAGE must be one of the shipped languages: "
                + ", ".join(LANGUAGES)
            )
        return negotiate(v)

    @field_validator("openai_api_key")
    @classmethod
    def _openai(cls, v: SecretStr | None) -> SecretStr | None:
        v = _secret(v, "OPENAI_API_KEY")
        if v is not None and len(v.get_secret_value()) < OPENAI_KEY_MIN_LENGTH:
            raise ValueError(
                f"is too short to be a real key ({OPENAI_KEY_MIN_LENGTH} characters at least): "
                "copy it from https://platform.openai.com/api-keys"
            )
        return v

    @field_validator("stripe_secret_key")
    @classmethod
    def _stripe(cls, v: SecretStr | None) -> SecretStr | None:
        return _secret(
            v,
            "IMAGEBOT_STRIPE_SECRET_KEY",
            re.compile(r"^(sk|rk)_(test|live)_\w{8,}$"),
            "it should start with sk_test_, sk_live_, rk_test_ or rk_live_",
        )

    @field_validator("stripe_webhook_secret")
    @classmethod
    def _stripe_webhook(cls, v: SecretStr | None) -> SecretStr | None:
        return _secret(
            v,
            "IMAGEBOT_STRIPE_WEBHOOK_SECRET",
            re.compile(r"^whsec_\w{8,}$"),
            "it should start with whsec_",
        )

    @field_validator("encryption_key")
    @classmethod
    def _encryption(cls, v: SecretStr | None) -> SecretStr | None:
        v = _secret(v, "IMAGEBOT_ENCRYPTION_KEY")
        if v is not None:
            try:
                raw = base64.urlsafe_b64decode(v.get_secret_value().encode())
            except ValueError:
                raw = b""
            if len(raw) != 32:
                raise ValueError(
                    "must be 32 random bytes in URL-safe base64 (make one with: imagebot keys new)"
                )
        return v

    @field_validator("database_url")
    @classmethod
    def _database(cls, v: str) -> str:
        if v.startswith("postgresql://") or v.startswith("postgres://"):
            # SQLAlchemy's plain postgresql:// means psycopg; the app speaks asyncpg.
            v = "postgresql+asyncpg://" + v.split("://", 1)[1]
        if not (v.startswith("sqlite+aiosqlite://") or v.startswith("postgresql+asyncpg://")):
            raise ValueError(
                "IMAGEBOT_DATABASE_URL must be sqlite+aiosqlite:///path or "
                "postgresql+asyncpg://user@host/db"
            )
        return v

    @field_validator("blocklist")
    @classmethod
    def _blocklist(cls, v: str) -> str:
        if v.strip():
            try:
                items = json.loads(v)
                assert isinstance(items, list)
                for item in items:
                    re.compile(str(item))
            except (ValueError, AssertionError, re.error) as exc:
                raise ValueError(
                    "IMAGEBOT_BLOCKLIST must be a JSON list of words or patterns, "
                    'e.g. ["gore", "\\bnsfw\\b"]'
                ) from exc
        return v

    def thresholds(self) -> dict[str, float]:
        """Moderation score thresholds by category."""
        if not self.moderation_thresholds.strip():
            return {}
        try:
            return {str(k): float(v) for k, v in json.loads(self.moderation_thresholds).items()}
        except (ValueError, AttributeError) as exc:
            raise ConfigurationError(
                'IMAGEBOT_MODERATION_THRESHOLDS must be JSON like {"violence": 0.7}'
            ) from exc

    @property
    def blocklist_patterns(self) -> list[str]:
        """The block list as a list of patterns."""
        return [str(p) for p in json.loads(self.blocklist)] if self.blocklist.strip() else []

    @field_validator("admins")
    @classmethod
    def _admins(cls, v: str) -> str:
        for item in filter(None, (p.strip() for p in v.split(","))):
            platform, _, uid = item.partition(":")
            if not re.fullmatch(r"[a-z]+", platform) or not uid.strip():
                raise ValueError(
                    f"IMAGEBOT_ADMINS entry '{item}' should look like telegram:123 or discord:456"
                )
        return v

    # --- derived -------------------------------------------------------------------------

    def data_cipher(self) -> DataCipher | None:
        """The cipher for data at rest, or None when no key is configured."""
        if self.encryption_key is None:
            return None
        older: tuple[bytes, ...] = ()
        if self.encryption_old_keys is not None:
            older = tuple(
                decode_key(k)
                for k in self.encryption_old_keys.get_secret_value().split(",")
                if k.strip()
            )
        return DataCipher(decode_key(self.encryption_key.get_secret_value()), older)

    @property
    def admin_ids(self) -> frozenset[tuple[str, str]]:
        """Operators as (platform, user id) pairs."""
        pairs = set()
        for item in filter(None, (p.strip() for p in self.admins.split(","))):
            platform, _, uid = item.partition(":")
            pairs.add((platform, uid.strip()))
        return frozenset(pairs)

    @property
    def chat_rate_platforms(self) -> frozenset[str]:
        """Platforms whose groups get the operator's request cap (IMAGEBOT_RATE_CHAT_PLATFORMS)."""
        return frozenset(p.strip() for p in self.rate_chat_platforms.split(",") if p.strip())

    @property
    def is_sqlite(self) -> bool:
        """True when the database is a SQLite file."""
        return self.database_url.startswith("sqlite")

    def effective_provider(self, *, console: bool) -> Literal["openai", "demo"]:
        """The provider to use: an explicit choice, else openai; the console falls back to demo."""
        if self.image_provider is not None:
            return self.image_provider
        if console and self.openai_api_key is None and self.openai_base_url is None:
            return "demo"
        return "openai"


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment; malformed values raise ConfigurationError."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = [f"{var}: {msg}" for _, var, msg in _problems(exc)]
        raise ConfigurationError("\n".join(lines)) from None


def _problems(exc: ValidationError) -> list[tuple[str, str, str]]:
    """(field, variable, words) for each refused value."""
    found = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err.get("loc", ())) or "setting"
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        found.append((field, _env_name(field), msg))
    return found


def load_settings_for_report() -> tuple[Settings, dict[str, str]]:
    """Settings for ``imagebot check-config``: every refused value is set aside (its
    default used instead) and returned as ``{variable: words}``, so one bad value is one
    line of the report rather than the end of it."""
    invalid: dict[str, str] = {}
    overrides: dict[str, object] = {}
    for _ in range(len(Settings.model_fields) + 1):
        try:
            return Settings(**overrides), invalid  # type: ignore[arg-type]
        except ValidationError as exc:
            for field, var, msg in _problems(exc):
                name = field.split(".", 1)[0]
                info = Settings.model_fields.get(name) or next(
                    (f for f in Settings.model_fields.values() if f.validation_alias == name),
                    None,
                )
                if info is None:
                    raise ConfigurationError(f"{var}: {msg}") from None
                key = name if name in Settings.model_fields else _field_of(name)
                overrides[key] = info.get_default(call_default_factory=True)
                invalid.setdefault(var, msg)
    raise ConfigurationError("\n".join(f"{v}: {m}" for v, m in invalid.items()))


def _field_of(alias: str) -> str:
    return next(n for n, f in Settings.model_fields.items() if f.validation_alias == alias)


def _env_name(field: str) -> str:
    if field in {"OPENAI_API_KEY", "OPENAI_BASE_URL"}:
        return field
    return "IMAGEBOT_" + field.upper()


@dataclass(frozen=True)
class ConfigReport:
    """What ``imagebot check-config`` prints: set, missing, and what the missing disables."""

    lines: tuple[tuple[str, str, str], ...]
    """(status, variable, words): status is ``ok``, ``missing``, ``warning`` or ``invalid``."""


def describe(settings: Settings, invalid: dict[str, str] | None = None) -> ConfigReport:
    """Plain-words report of the configuration; never prints a secret's value.

    ``invalid`` (from :func:`load_settings_for_report`) are refused values: each is one
    ``invalid`` line, where the variable's own line would be.
    """
    rows: list[tuple[str, str, str]] = []
    invalid = dict(invalid or {})

    def secret(var: str, value: SecretStr | None, missing: str) -> None:
        if var in invalid:
            rows.append(("invalid", var, f"{invalid.pop(var)}; {missing} until it is fixed"))
        elif value is not None:
            rows.append(("ok", var, "set"))
        else:
            rows.append(("missing", var, missing))

    rows.append(("ok", "IMAGEBOT_DATABASE_URL", _redact_url(settings.database_url)))
    rows.append(("ok", "IMAGEBOT_DATA_DIR", str(settings.data_dir)))
    if settings.file_store == "s3":
        if not settings.s3_bucket:
            rows.append(("missing", "IMAGEBOT_S3_BUCKET", "IMAGEBOT_FILE_STORE=s3 needs a bucket"))
        else:
            where = _redact_url(settings.s3_endpoint_url or "AWS S3")
            rows.append(("ok", "IMAGEBOT_FILE_STORE", f"s3: {settings.s3_bucket} at {where}"))
    else:
        rows.append(("ok", "IMAGEBOT_FILE_STORE", "local"))
    secret("IMAGEBOT_TELEGRAM_TOKEN", settings.telegram_token, "the Telegram bot will not start")
    secret("IMAGEBOT_DISCORD_TOKEN", settings.discord_token, "the Discord bot will not start")
    provider = settings.effective_provider(console=False)
    if provider == "demo":
        rows.append(
            (
                "warning",
                "IMAGEBOT_IMAGE_PROVIDER",
                "demo: every image is a labelled placeholder drawn locally",
            )
        )
    else:
        secret(
            "OPENAI_API_KEY",
            settings.openai_api_key,
            "no real images: with a chat token `imagebot run` refuses to start; without "
            "one it (and `imagebot console`) opens the console with the demo model",
        )
    rows.append(("ok", "IMAGEBOT_IMAGE_MODEL", settings.image_model))
    rows.append(("ok", "OPENAI_BASE_URL", settings.openai_base_url or "OpenAI's"))
    secret(
        "IMAGEBOT_STRIPE_SECRET_KEY",
        settings.stripe_secret_key,
        "no credit purchases: /buy and /subscribe are switched off",
    )
    secret(
        "IMAGEBOT_STRIPE_WEBHOOK_SECRET",
        settings.stripe_webhook_secret,
        "payments cannot be confirmed: purchases never add credits",
    )
    if settings.stripe_secret_key is not None and not settings.public_url:
        rows.append(
            (
                "warning",
                "IMAGEBOT_PUBLIC_URL",
                "not set: after paying, buyers return to "
                f"http://{settings.http_host}:{settings.http_port}/stripe/success, which "
                "their browsers cannot reach",
            )
        )
    if settings.encryption_key is None:
        rows.append(
            (
                "warning",
                "IMAGEBOT_ENCRYPTION_KEY",
                "not set: images and prompts are stored in plain form",
            )
        )
    else:
        rows.append(("ok", "IMAGEBOT_ENCRYPTION_KEY", "set"))
    unknown = sorted({p for p, _ in settings.admin_ids} - {"telegram", "discord", "console"})
    if unknown:
        rows.append(("warning", "IMAGEBOT_ADMINS", f"unknown platform(s): {', '.join(unknown)}"))
    if not settings.admin_ids:
        rows.append(("missing", "IMAGEBOT_ADMINS", "nobody can use /admin"))
    else:
        rows.append(("ok", "IMAGEBOT_ADMINS", f"{len(settings.admin_ids)} operator(s)"))
    rows.append(("ok", "IMAGEBOT_FREE_CREDITS", str(settings.free_credits)))
    rows.append(("ok", "IMAGEBOT_HTTP_HOST/PORT", f"{settings.http_host}:{settings.http_port}"))
    if settings.encryption_key is None and "IMAGEBOT_ENCRYPTION_KEY" in invalid:
        rows = [r for r in rows if r[1] != "IMAGEBOT_ENCRYPTION_KEY"]
    rows += [("invalid", var, words) for var, words in invalid.items()]
    return ConfigReport(tuple(rows))


def _redact_url(url: str) -> str:
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)
