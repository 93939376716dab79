"""What each image model accepts: the one table of sizes, qualities, formats and limits.

Option parsing, pricing, the provider and the adapters' menus all read this table, so a
new model is one entry here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.errors import InvalidRequest
from core.settings import DEFAULT_MODEL
from core.types import GenerateOptions, ResolvedOptions, UserSettingsView

FIXED_SIZES = ("1024x1024", "1536x1024", "1024x1536")
QUALITIES = ("low", "medium", "high", "auto")
FORMATS = ("png", "jpeg", "webp")
BACKGROUNDS = ("auto", "opaque", "transparent")
MAX_N_PER_JOB = 4
_SIZE_RE = re.compile(r"^(\d{2,5})x(\d{2,5})$")


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """Limits of one model."""

    name: str
    sizes: tuple[str, ...] = FIXED_SIZES
    qualities: tuple[str, ...] = QUALITIES
    formats: tuple[str, ...] = FORMATS
    backgrounds: tuple[str, ...] = BACKGROUNDS
    allows_auto_size: bool = True
    free_sizes: bool = False
    """Arbitrary ``WxH``: edges multiples of 16 up to 3840, ratio at most 3:1, and
    between 655,360 and 8,294,400 pixels in all."""
    streams: bool = True
    max_inputs: int = 16
    supports_mask: bool = True
    max_prompt_chars: int = 32_000
    retired: bool = False


MODEL_SPECS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("gpt-image-2", free_sizes=True),
        ModelSpec("gpt-image-1.5"),
        ModelSpec("gpt-image-1-mini"),
        ModelSpec("gpt-image-1", retired=True),
        ModelSpec("demo", max_prompt_chars=32_000),
    )
}

DEFAULTS = {
    "size": "1024x1024",
    "quality": "medium",
    "output_format": "png",
    "background": "auto",
    "n": 1,
}


def spec_for(model: str) -> ModelSpec:
    """The spec of ``model``; an unknown name (a compatible server's own) gets gpt-image-2's."""
    spec = MODEL_SPECS.get(model)
    if spec is None:
        base = MODEL_SPECS[DEFAULT_MODEL]
        return ModelSpec(
            name=model,
            sizes=base.sizes,
            free_sizes=base.free_sizes,
            streams=base.streams,
        )
    return spec


def parse_size(value: str) -> tuple[int, int] | None:
    """``"1536x1024"`` -> ``(1536, 1024)``; None for ``auto`` or malformed text."""
    m = _SIZE_RE.match(value.strip().lower())
    if not m:
        return None
    return int(m.group(1)), int(m.group(2))


MIN_FREE_PIXELS = 655_360
MAX_FREE_PIXELS = 8_294_400


def _check_free_size(w: int, h: int) -> bool:
    if w % 16 or h % 16 or w <= 0 or h <= 0:
        return False
    if max(w, h) > 3840 or not MIN_FREE_PIXELS <= w * h <= MAX_FREE_PIXELS:
        return False
    return max(w, h) <= 3 * min(w, h)


def allowed_sizes_text(spec: ModelSpec) -> str:
    """Human list of accepted sizes."""
    sizes = list(spec.sizes) + (["auto"] if spec.allows_auto_size else [])
    text = ", ".join(sizes)
    if spec.free_sizes:
        text += (
            " (or any WxH with sides a multiple of 16, at most 3840, at most 3:1, "
            "0.66 to 8.3 megapixels)"
        )
    return text


def nearest_size(ratio: float, spec: ModelSpec) -> str:
    """The allowed fixed size whose aspect ratio is closest to ``ratio`` (w/h)."""

    def distance(size: str) -> float:
        parsed = parse_size(size)
        assert parsed is not None
        return abs(parsed[0] / parsed[1] - ratio)

    return min(spec.sizes, key=distance)


def resolve_options(
    options: GenerateOptions,
    *,
    model: str,
    defaults: UserSettingsView | None = None,
    has_inputs: bool = False,
) -> ResolvedOptions:
    """Apply the user's defaults, then the model's, and check every value against the table.

    Raises :class:`InvalidRequest` naming the value and what is accepted.
    """
    spec = spec_for(model)
    if spec.retired:
        raise InvalidRequest(
            f"The model {model} has been retired by its provider; ask the operator to "
            "switch to a current one."
        )
    user = defaults or UserSettingsView()

    def pick(name: str) -> object:
        value = getattr(options, name)
        if value is None:
            value = getattr(user, name)
        return DEFAULTS[name] if value is None else value

    size = str(pick("size")).strip().lower()
    quality = str(pick("quality")).strip().lower()
    fmt = str(pick("output_format")).strip().lower()
    if fmt == "jpg":
        fmt = "jpeg"
    background = str(pick("background")).strip().lower()
    n_raw = pick("n")

    if size == "auto":
        if not spec.allows_auto_size:
            raise InvalidRequest(
                f"Size 'auto' is not available. Sizes: {allowed_sizes_text(spec)}."
            )
    elif size not in spec.sizes:
        parsed = parse_size(size)
        if not (spec.free_sizes and parsed and _check_free_size(*parsed)):
            raise InvalidRequest(
                f"Size '{_clip(size)}' is not available for {spec.name}. "
                f"Sizes: {allowed_sizes_text(spec)}."
            )
    if quality not in spec.qualities:
        raise InvalidRequest(
            f"Quality '{_clip(quality)}' is not available. Qualities: {', '.join(spec.qualities)}."
        )
    if fmt not in spec.formats:
        raise InvalidRequest(
            f"Format '{_clip(fmt)}' is not available. Formats: {', '.join(spec.formats)}."
        )
    if background not in spec.backgrounds:
        raise InvalidRequest(
            f"Background '{_clip(background)}' is not available. "
            f"Backgrounds: {', '.join(spec.backgrounds)}."
        )
    if background == "transparent" and fmt == "jpeg":
        raise InvalidRequest("A transparent background needs the png or webp format, not jpeg.")
    try:
        n = int(str(n_raw))
    except ValueError:
        raise InvalidRequest(
            f"The number of images must be a whole number from 1 to {MAX_N_PER_JOB}."
        ) from None
    if not 1 <= n <= MAX_N_PER_JOB:
        raise InvalidRequest(f"The number of images must be from 1 to {MAX_N_PER_JOB}.")
    return ResolvedOptions(
        model=spec.name,
        size=size,
        quality=quality,
        output_format=fmt,
        background=background,
        n=n,
    )


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
