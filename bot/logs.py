"""Operational logs: one line per event, ids only (never prompts, images or secrets);
optionally also written to a file a day under ``IMAGEBOT_LOG_DIR``, pruned by retention."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from logging.handlers import TimedRotatingFileHandler
from pathlib import Path

_ROTATED = re.compile(r"^imagebot\.log\.(\d{4}-\d{2}-\d{2})$")


# Libraries that log request URLs (Telegram puts the token in the path) or SQL parameters
# (prompts) at DEBUG: pinned to WARNING whatever level the operator chooses.
QUIET_LIBRARIES = (
    "httpx",
    "httpx2",
    "httpcore",
    "openai",
    "telegram",
    "discord",
    "stripe",
    "aiosqlite",
    "sqlalchemy",
    "asyncpg",
    "aiohttp.access",
    "apscheduler",
    "PIL",
)


_FIELD = re.compile(r"(\w+)=(\S+)")
_TEXT = "%(asctime)s %(levelname)s %(name)s %(message)s"
_json_logs = False


class JsonFormatter(logging.Formatter):
    """One JSON object per line; ``key=value`` pairs of the message (job, user, update
    and other ids) become fields of their own, so log tools can filter on them."""

    def format(self, record: logging.LogRecord) -> str:
        """Serialise one record."""
        message = record.getMessage()
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": message,
        }
        for key, value in _FIELD.findall(message):
            entry.setdefault(key, value)
        if record.exc_info and record.exc_info[0] is not None:
            entry["error"] = record.exc_info[0].__name__
            entry["trace"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def _formatter() -> logging.Formatter:
    return JsonFormatter() if _json_logs else logging.Formatter(_TEXT)


def configure_logging(
    level: str = "INFO", *, quiet: bool = False, log_dir: Path | None = None, fmt: str = "text"
) -> None:
    """One line per event to stderr (and to ``log_dir`` when set); ids only, never
    prompts, images, tokens or keys. ``fmt="json"`` (IMAGEBOT_LOG_FORMAT) writes JSON."""
    global _json_logs
    _json_logs = fmt == "json"
    logging.basicConfig(
        level=logging.WARNING if quiet else getattr(logging, level.upper(), logging.INFO),
        format=_TEXT,
    )
    for handler in logging.getLogger().handlers:
        handler.setFormatter(_formatter())
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)
    if log_dir is not None:
        add_file_logging(log_dir)


def add_file_logging(log_dir: Path) -> None:
    """Also log to ``log_dir/imagebot.log``, rotated at midnight UTC."""
    log_dir.mkdir(parents=True, exist_ok=True)
    handler = TimedRotatingFileHandler(
        log_dir / "imagebot.log", when="midnight", utc=True, encoding="utf-8"
    )
    handler.setFormatter(_formatter())
    logging.getLogger().addHandler(handler)


class LogFilePruner:
    """Deletes rotated log files older than the retention period."""

    def __init__(self, log_dir: Path | None) -> None:
        self.log_dir = log_dir

    def __call__(self, before: datetime, dry_run: bool) -> int:
        """Remove (or count) rotated files dated before ``before``."""
        if self.log_dir is None or not self.log_dir.exists():
            return 0
        count = 0
        for path in self.log_dir.iterdir():
            match = _ROTATED.match(path.name)
            if not match:
                continue
            day = datetime.strptime(match.group(1), "%Y-%m-%d").replace(tzinfo=UTC)
            if day < before:
                count += 1
                if not dry_run:
                    path.unlink(missing_ok=True)
        return count
