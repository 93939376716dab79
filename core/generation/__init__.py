"""Generation: accepting jobs, the worker, options, the model table, pricing, history, providers."""

from __future__ import annotations

from core.generation.gallery import (
    GalleryAccess,
    GalleryItem,
    GalleryNotConfigured,
    GalleryPage,
    GalleryService,
    GallerySession,
    SessionGrant,
    SignInRefused,
    verify_init_data,
)
from core.generation.history import DownloadLink, HistoryService
from core.generation.intake import (
    ImageLimits,
    image_dimensions,
    normalize_mask,
    normalize_reference,
    sniff_image_type,
)
from core.generation.models import (
    FIXED_SIZES,
    FORMATS,
    MAX_N_PER_JOB,
    QUALITIES,
    ModelSpec,
    resolve_options,
    spec_for,
)
from core.generation.options import accepted_text, parse_options
from core.generation.ports import (
    GalleryRepository,
    GalleryRow,
    ImageModel,
    ModelCall,
    ModelEvent,
    ModelImage,
    ModelPartial,
)
from core.generation.pricing import PriceTable
from core.generation.providers import build_image_model, demo
from core.generation.providers.demo import DemoImageModel
from core.generation.providers.openai_images import OpenAIImageModel, SSEEvent, SSEParser
from core.generation.service import GenerationLimits, GenerationService
from core.generation.worker import Worker

__all__ = [
    "FIXED_SIZES",
    "FORMATS",
    "MAX_N_PER_JOB",
    "QUALITIES",
    "DemoImageModel",
    "DownloadLink",
    "GalleryAccess",
    "GalleryItem",
    "GalleryNotConfigured",
    "GalleryPage",
    "GalleryRepository",
    "GalleryRow",
    "GalleryService",
    "GallerySession",
    "GenerationLimits",
    "GenerationService",
    "HistoryService",
    "ImageLimits",
    "ImageModel",
    "ModelCall",
    "ModelEvent",
    "ModelImage",
    "ModelPartial",
    "ModelSpec",
    "OpenAIImageModel",
    "PriceTable",
    "SSEEvent",
    "SSEParser",
    "SessionGrant",
    "SignInRefused",
    "Worker",
    "accepted_text",
    "build_image_model",
    "demo",
    "image_dimensions",
    "normalize_mask",
    "normalize_reference",
    "parse_options",
    "resolve_options",
    "sniff_image_type",
    "spec_for",
    "verify_init_data",
]
