"""Safety: screening, the moderation client, bans, strikes, rate limits and chat controls."""

from __future__ import annotations

from core.safety.moderation import OpenAIModerationScreener, request_body
from core.safety.ports import (
    ChatControlRecord,
    ReviewRecord,
    SafetyRepository,
    Standing,
    UpdateRepository,
)
from core.safety.screening import BlocklistScreener, Screener, categories_message, reason_message
from core.safety.service import SafetyConfig, SafetyService, audit

__all__ = [
    "BlocklistScreener",
    "ChatControlRecord",
    "OpenAIModerationScreener",
    "ReviewRecord",
    "SafetyConfig",
    "SafetyRepository",
    "SafetyService",
    "Screener",
    "Standing",
    "UpdateRepository",
    "audit",
    "categories_message",
    "reason_message",
    "request_body",
]
