"""The price table: credits per image by model, quality and size, times n.

A price is the credits for one square (1024x1024) image of a model at a quality; other
sizes scale with their pixel area (rounded up), ``auto`` is priced as the largest fixed
size, and an edit costs the same as a generation. The rows come from the model catalog
(``prices`` of each model, which ``IMAGEBOT_MODELS_FILE`` may override); ``IMAGEBOT_PRICES``
(JSON: ``{"gpt-image-2": {"low": 1, "medium": 4, "high": 16}}``) still overrides whole rows;
``"*"`` is the row for models neither names. A job's price is fixed when it is queued.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from core.errors import ConfigurationError
from core.generation.models import ModelSpec, parse_size, shipped_specs
from core.types import ResolvedOptions

FALLBACK_ROW: dict[str, int] = {"low": 1, "medium": 4, "high": 16, "auto": 16}
"""The row of a model that neither the catalog nor ``IMAGEBOT_PRICES`` prices."""


def _shipped_rows() -> dict[str, dict[str, int]]:
    rows = {name: dict(spec.prices) for name, spec in shipped_specs().items()}
    rows["*"] = dict(FALLBACK_ROW)
    return rows


_SQUARE = 1024 * 1024
_AUTO_AREA = 1536 * 1024


@dataclass(frozen=True)
class PriceTable:
    """Credits per square image by model and quality."""

    rows: Mapping[str, Mapping[str, int]] = field(default_factory=_shipped_rows)

    @classmethod
    def from_catalog(cls, specs: Mapping[str, ModelSpec], text: str | None = None) -> PriceTable:
        """The catalog's price rows, with the operator's ``IMAGEBOT_PRICES`` over them."""
        base = cls.from_json(text)
        rows = {name: dict(spec.prices) for name, spec in specs.items()}
        rows["*"] = dict(FALLBACK_ROW)
        if text and text.strip():
            rows.update({k: dict(v) for k, v in base.rows.items() if k in _json_models(text)})
        return cls(rows)

    @classmethod
    def from_json(cls, text: str | None) -> PriceTable:
        """Parse the operator's table over the shipped catalog's; empty keeps the catalog's."""
        if not text or not text.strip():
            return cls()
        try:
            raw = json.loads(text)
            rows = {
                str(model): {str(q): int(v) for q, v in dict(qualities).items()}
                for model, qualities in dict(raw).items()
            }
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(
                "IMAGEBOT_PRICES must be JSON like "
                '{"gpt-image-2": {"low": 1, "medium": 4, "high": 16}}'
            ) from exc
        for model, qualities in rows.items():
            if any(v < 0 for v in qualities.values()):
                raise ConfigurationError(f"IMAGEBOT_PRICES: negative price for {model}")
        merged: dict[str, Mapping[str, int]] = dict(_shipped_rows())
        merged.update(rows)
        return cls(merged)

    def price(self, options: ResolvedOptions) -> int:
        """Credits for a job with these options (all ``n`` images)."""
        row = self.rows.get(options.model) or self.rows.get("*") or FALLBACK_ROW
        unit = row.get(options.quality, row.get("high", max(row.values())))
        if options.size == "auto":
            area = _AUTO_AREA
        else:
            parsed = parse_size(options.size)
            area = parsed[0] * parsed[1] if parsed else _SQUARE
        per_image = math.ceil(unit * area / _SQUARE) if unit else 0
        return per_image * options.n

    def row(self, model: str) -> Mapping[str, int]:
        """Credits per square image by quality for ``model``."""
        return self.rows.get(model) or self.rows.get("*") or FALLBACK_ROW


def _json_models(text: str) -> set[str]:
    """The models an ``IMAGEBOT_PRICES`` value names (already validated)."""
    return {str(k) for k in dict(json.loads(text))}
