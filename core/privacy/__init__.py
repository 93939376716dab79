"""Privacy: self-service (export, erasure, consents), retention, onboarding, user messages."""

from __future__ import annotations

from core.privacy.messages import MessageService, dm_target, parse_chat
from core.privacy.onboarding import OnboardingService, OnboardingStatus, Policy
from core.privacy.ports import (
    ConsentRecord,
    FeedbackRecord,
    PrivacyRepository,
    PrivacyRequestRecord,
)
from core.privacy.retention import RetentionPolicy, RetentionService
from core.privacy.service import (
    CONSENT_LABELS,
    ERASURE_QUESTION_TTL,
    AppealDecision,
    ConfirmationExpired,
    ExportResult,
    PrivacyOverview,
    PrivacyRequestRefused,
    PrivacyService,
    PrivateChatRequired,
)

__all__ = [
    "CONSENT_LABELS",
    "ERASURE_QUESTION_TTL",
    "AppealDecision",
    "ConfirmationExpired",
    "ConsentRecord",
    "ExportResult",
    "FeedbackRecord",
    "MessageService",
    "OnboardingService",
    "OnboardingStatus",
    "Policy",
    "PrivacyOverview",
    "PrivacyRepository",
    "PrivacyRequestRecord",
    "PrivacyRequestRefused",
    "PrivacyService",
    "PrivateChatRequired",
    "RetentionPolicy",
    "RetentionService",
    "dm_target",
    "parse_chat",
]
