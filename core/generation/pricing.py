"""The price table: credits per image by model, quality and size, times n.

A price is the credits for one square (1024x1024) image of a model at a quality; other
sizes scale with their pixel area (rounded up), ``auto`` is priced as the largest fixed
size, and an edit costs the same as a generation. Operators replace the table with
``IMAGEBOT_PRICES`` (JSON: ``{"gpt-image-2": {"low": 1, "medium": 4, "high": 16}}``);
``"*"`` is the row for models the table does not name.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from core.errors import ConfigurationError
from core.generation.models import parse_size
from core.types import ResolvedOptions

DEFAULT_PRICES: dict[str, dict[str, int]] = {
    "gpt-image-2": {"low": 1, "medium": 4, "high": 16, "auto": 16},
    "gpt-image-1.5": {"low": 1, "medium": 4, "high": 14, "auto": 14},
    "gpt-image-1-mini": {"low": 1, "medium": 2, "high": 4, "auto": 4},
    "demo": {"low": 1, "medium": 1, "high": 1, "auto": 1},
    "*": {"low": 1, "medium": 4, "high": 16, "auto": 16},
}
_SQUARE = 1024 * 1024
_AUTO_AREA = 1536 * 1024


@dataclass(frozen=True)
class PriceTable:
    """Credits per square image by model and quality."""

    rows: Mapping[str, Mapping[str, int]] = field(default_factory=lambda: DEFAULT_PRICES)

    @classmethod
    def from_json(cls, text: str | None) -> PriceTable:
        """Parse the operator's table; an empty value keeps the defaults."""
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
        merged = dict(DEFAULT_PRICES)
        merged.update(rows)
        return cls(merged)

    def price(self, options: ResolvedOptions) -> int:
        """Credits for a job with these options (all ``n`` images)."""
        row = self.rows.get(options.model) or self.rows.get("*") or DEFAULT_PRICES["*"]
        unit = row.get(options.quality, row.get("high", max(row.values())))
        if options.size == "auto":
            area = _AUTO_AREA
        else:
            parsed = parse_size(options.size)
            area = parsed[0] * parsed[1] if parsed else _SQUARE
        per_image = math.ceil(unit * area / _SQUARE) if unit else 0
        return per_image * options.n
