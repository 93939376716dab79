"""What each image model accepts and costs: the model catalog, and checking options against it.

The catalog is data (``catalog.toml`` beside this module, optionally overridden or extended
by the operator's ``IMAGEBOT_MODELS_FILE``); :func:`load_catalog` reads and validates it into
:class:`ModelSpec` values. A :class:`ModelCatalog` is the running catalog of one process:
the models the operator enabled, what the provider said about them (gone, shutdown date),
and the options the provider refused at run time. Option parsing, pricing, the provider and
the adapters' menus all read it.
"""

from __future__ import annotations

import json
import logging
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

from core.errors import ConfigurationError, InvalidRequest
from core.i18n import msg
from core.settings import DEFAULT_MODEL, Settings
from core.types import GenerateOptions, ResolvedOptions, UserSettingsView

log = logging.getLogger("imagebot.models")

FIXED_SIZES = ("1024x1024", "1536x1024", "1024x1536")
QUALITIES = ("low", "medium", "high", "auto")
FORMATS = ("png", "jpeg", "webp")
BACKGROUNDS = ("auto", "opaque", "transparent")
PROVIDERS = ("openai", "demo")
MAX_N_PER_JOB = 4
_SIZE_RE = re.compile(r"^(\d{2,5})x(\d{2,5})$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}$")

MIN_FREE_PIXELS = 655_360
MAX_FREE_PIXELS = 8_294_400

DEFAULTS: dict[str, str | int] = {
    "size": "1024x1024",
    "quality": "medium",
    "output_format": "png",
    "background": "auto",
    "n": 1,
}
"""The defaults of a model whose catalog entry names none."""

OPTION_NAMES = ("size", "quality", "output_format", "background")
"""Options whose values a provider may refuse (and the running catalog may withdraw)."""


@dataclass(frozen=True, slots=True)
class FreeSizeRule:
    """Which arbitrary ``WxH`` sizes a model accepts."""

    multiple_of: int = 16
    max_edge: int = 3840
    max_ratio: float = 3.0
    min_pixels: int = MIN_FREE_PIXELS
    max_pixels: int = MAX_FREE_PIXELS

    def accepts(self, w: int, h: int) -> bool:
        """True when ``w x h`` follows the rule."""
        if w <= 0 or h <= 0 or w % self.multiple_of or h % self.multiple_of:
            return False
        if max(w, h) > self.max_edge or not self.min_pixels <= w * h <= self.max_pixels:
            return False
        return max(w, h) <= self.max_ratio * min(w, h)

    def text(self) -> str:
        """The rule in words."""
        return (
            f"any WxH with sides a multiple of {self.multiple_of}, at most {self.max_edge}, "
            f"at most {self.max_ratio:g}:1, {self.min_pixels / 1e6:.2f} to "
            f"{self.max_pixels / 1e6:.1f} megapixels"
        )


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One model of the catalog: what it accepts, what it costs, where it runs."""

    name: str
    label: str = ""
    provider: str = "openai"
    sizes: tuple[str, ...] = FIXED_SIZES
    qualities: tuple[str, ...] = QUALITIES
    formats: tuple[str, ...] = FORMATS
    backgrounds: tuple[str, ...] = BACKGROUNDS
    allows_auto_size: bool = True
    free_size: FreeSizeRule | None = None
    """Arbitrary ``WxH`` sizes, when the model takes them."""
    streams: bool = True
    max_inputs: int = 16
    supports_mask: bool = True
    max_prompt_chars: int = 32_000
    input_fidelity: bool = False
    moderation: bool = True
    output_compression: bool = True
    retired: bool = False
    shutdown_date: date | None = None
    successor: str | None = None
    defaults: Mapping[str, str | int] = field(default_factory=lambda: dict(DEFAULTS))
    prices: Mapping[str, int] = field(
        default_factory=lambda: {"low": 1, "medium": 4, "high": 16, "auto": 16}
    )

    @property
    def free_sizes(self) -> bool:
        """True when the model accepts arbitrary ``WxH`` sizes."""
        return self.free_size is not None

    @property
    def display(self) -> str:
        """The name users see."""
        return self.label or self.name


# --- reading the catalog ----------------------------------------------------------------------

_FIELDS = {
    "label",
    "provider",
    "sizes",
    "auto_size",
    "free_size",
    "qualities",
    "formats",
    "backgrounds",
    "streaming",
    "max_inputs",
    "mask",
    "prompt_limit",
    "input_fidelity",
    "moderation",
    "output_compression",
    "retired",
    "shutdown_date",
    "successor",
    "defaults",
    "prices",
}
_FREE_FIELDS = {"multiple_of", "max_edge", "max_ratio", "min_pixels", "max_pixels"}
_DEFAULT_FIELDS = set(DEFAULTS)
_MERGED = {"free_size", "defaults", "prices"}


class CatalogError(ConfigurationError):
    """The model catalog (shipped or the operator's) is malformed; the text names the
    source, the model and the field."""


def shipped_catalog_text() -> str:
    """The text of the catalog shipped with imagebot."""
    return resources.files("core.generation").joinpath("catalog.toml").read_text("utf-8")


def parse_catalog_text(text: str, source: str) -> dict[str, dict[str, Any]]:
    """The raw ``{model: {field: value}}`` entries of a TOML or JSON catalog."""
    stripped = text.lstrip()
    try:
        raw = json.loads(text) if stripped.startswith("{") else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise CatalogError(f"{source}: not valid TOML or JSON ({exc})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("models"), dict):
        raise CatalogError(f"{source}: expected a 'models' table with one entry per model")
    unknown_top = sorted(set(raw) - {"models"})
    if unknown_top:
        raise CatalogError(f"{source}: unknown top-level key '{unknown_top[0]}'")
    entries: dict[str, dict[str, Any]] = {}
    for name, entry in raw["models"].items():
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise CatalogError(f"{source}: model name '{str(name)[:40]}' is not a valid name")
        if not isinstance(entry, dict):
            raise CatalogError(f"{source}: model '{name}' must be a table of fields")
        for key in entry:
            if key not in _FIELDS:
                raise CatalogError(f"{source}: model '{name}', field '{key}': unknown field")
        entries[name] = dict(entry)
    return entries


def merge_entries(
    base: Mapping[str, Mapping[str, Any]], override: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """The operator's entries over the shipped ones: field by field (tables key by key)."""
    merged = {name: dict(entry) for name, entry in base.items()}
    for name, entry in override.items():
        target = merged.setdefault(name, {})
        for key, value in entry.items():
            if key in _MERGED and isinstance(value, dict) and isinstance(target.get(key), dict):
                target[key] = {**target[key], **value}
            else:
                target[key] = value
    return merged


def load_catalog(
    operator_file: Path | None = None, *, shipped_text: str | None = None
) -> dict[str, ModelSpec]:
    """The effective catalog: the shipped one, with the operator's file over it.

    Raises :class:`CatalogError` naming the file, the model and the field at fault.
    """
    entries = parse_catalog_text(shipped_text or shipped_catalog_text(), "shipped catalog")
    if operator_file is not None:
        try:
            text = Path(operator_file).read_text("utf-8")
        except OSError as exc:
            raise CatalogError(
                f"IMAGEBOT_MODELS_FILE: cannot read {operator_file} ({exc.strerror})"
            ) from None
        source = f"IMAGEBOT_MODELS_FILE ({Path(operator_file).name})"
        override = parse_catalog_text(text, source)
        for name, entry in override.items():
            if name not in entries and "prices" not in entry:
                raise CatalogError(
                    f"{source}: model '{name}', field 'prices': a new model needs its price "
                    "table (credits per square image for low, medium, high)"
                )
        entries = merge_entries(entries, override)
    else:
        source = "shipped catalog"
    specs = {name: _spec(name, entry, source) for name, entry in entries.items()}
    for spec in specs.values():
        if spec.successor is not None and spec.successor not in specs:
            raise CatalogError(
                f"{source}: model '{spec.name}', field 'successor': '{spec.successor}' is not "
                "in the catalog"
            )
        if spec.successor == spec.name:
            raise CatalogError(
                f"{source}: model '{spec.name}', field 'successor': a model cannot succeed itself"
            )
    return specs


def _spec(name: str, entry: Mapping[str, Any], source: str) -> ModelSpec:
    """One entry, checked field by field."""

    def fail(key: str, why: str) -> CatalogError:
        return CatalogError(f"{source}: model '{name}', field '{key}': {why}")

    def strings(
        key: str, allowed: Iterable[str] | None, default: tuple[str, ...]
    ) -> tuple[str, ...]:
        value = entry.get(key, list(default))
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise fail(key, "expected a list of strings")
        if allowed is not None:
            allowed = tuple(allowed)
            for v in value:
                if v not in allowed:
                    raise fail(key, f"'{v[:40]}' is not one of {', '.join(allowed)}")
        return tuple(value)

    def flag(key: str, default: bool) -> bool:
        value = entry.get(key, default)
        if not isinstance(value, bool):
            raise fail(key, "expected true or false")
        return value

    def integer(key: str, default: int, low: int, high: int) -> int:
        value = entry.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise fail(key, f"expected a whole number from {low} to {high}")
        return value

    label = entry.get("label", name)
    if not isinstance(label, str) or not 0 < len(label) <= 60:
        raise fail("label", "expected a name of 1 to 60 characters")
    provider = entry.get("provider", "openai")
    if provider not in PROVIDERS:
        raise fail("provider", f"expected one of {', '.join(PROVIDERS)}")
    sizes = strings("sizes", None, FIXED_SIZES)
    for size in sizes:
        parsed = parse_size(size)
        if parsed is None:
            raise fail("sizes", f"'{size[:40]}' does not look like WxH")
    free: FreeSizeRule | None = None
    raw_free = entry.get("free_size")
    if raw_free is not None:
        if not isinstance(raw_free, dict):
            raise fail("free_size", "expected a table of rules")
        for key in raw_free:
            if key not in _FREE_FIELDS:
                raise fail("free_size", f"unknown rule '{str(key)[:40]}'")
        values: dict[str, Any] = {}
        for key in _FREE_FIELDS:
            if key in raw_free:
                v = raw_free[key]
                ok = isinstance(v, int | float) and not isinstance(v, bool) and v > 0
                if key != "max_ratio":
                    ok = ok and isinstance(v, int)
                if not ok:
                    raise fail("free_size", f"'{key}' must be a positive number")
                values[key] = v
        free = FreeSizeRule(**values)
    qualities = strings("qualities", QUALITIES, QUALITIES)
    formats = strings("formats", FORMATS, FORMATS)
    backgrounds = strings("backgrounds", BACKGROUNDS, BACKGROUNDS)
    for key, values_ in (("qualities", qualities), ("formats", formats)):
        if not values_:
            raise fail(key, "needs at least one value")
    if not backgrounds:
        raise fail("backgrounds", "needs at least one value")
    raw_date = entry.get("shutdown_date")
    shutdown: date | None = None
    if raw_date is not None:
        if isinstance(raw_date, date):
            shutdown = raw_date
        elif isinstance(raw_date, str):
            try:
                shutdown = date.fromisoformat(raw_date)
            except ValueError:
                raise fail("shutdown_date", "expected a date YYYY-MM-DD") from None
        else:
            raise fail("shutdown_date", "expected a date YYYY-MM-DD")
    successor = entry.get("successor")
    if successor is not None and (not isinstance(successor, str) or not successor):
        raise fail("successor", "expected a model name")
    defaults: dict[str, str | int] = dict(DEFAULTS)
    raw_defaults = entry.get("defaults", {})
    if not isinstance(raw_defaults, dict):
        raise fail("defaults", "expected a table")
    for key, value in raw_defaults.items():
        if key not in _DEFAULT_FIELDS:
            raise fail("defaults", f"unknown option '{str(key)[:40]}'")
        if key == "n":
            if isinstance(value, bool) or not isinstance(value, int):
                raise fail("defaults", "'n' must be a whole number")
        elif not isinstance(value, str):
            raise fail("defaults", f"'{key}' must be text")
        defaults[key] = value
    raw_prices = entry.get("prices")
    if not isinstance(raw_prices, dict) or not raw_prices:
        raise fail("prices", "expected a table of credits per quality")
    prices: dict[str, int] = {}
    for key, value in raw_prices.items():
        if key not in QUALITIES:
            raise fail("prices", f"'{str(key)[:40]}' is not a quality ({', '.join(QUALITIES)})")
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1_000_000:
            raise fail("prices", f"'{key}' must be a whole number of credits from 0")
        prices[key] = value
    for quality in qualities:
        if quality not in prices:
            raise fail("prices", f"no price for quality '{quality}'")
    spec = ModelSpec(
        name=name,
        label=label,
        provider=provider,
        sizes=sizes,
        qualities=qualities,
        formats=formats,
        backgrounds=backgrounds,
        allows_auto_size=flag("auto_size", True),
        free_size=free,
        streams=flag("streaming", True),
        max_inputs=integer("max_inputs", 16, 0, 16),
        supports_mask=flag("mask", True),
        max_prompt_chars=integer("prompt_limit", 32_000, 1, 1_000_000),
        input_fidelity=flag("input_fidelity", False),
        moderation=flag("moderation", True),
        output_compression=flag("output_compression", True),
        retired=flag("retired", False),
        shutdown_date=shutdown,
        successor=successor,
        defaults=defaults,
        prices=prices,
    )
    # Defaults not given fall back to the model's own first value; given ones must be its own.
    fixed: dict[str, str | int] = dict(spec.defaults)
    for key, attr in (("quality", "qualities"), ("output_format", "formats")):
        values_ = getattr(spec, attr)
        if key not in raw_defaults and fixed[key] not in values_:
            fixed[key] = values_[0]
    if "background" not in raw_defaults and fixed["background"] not in spec.backgrounds:
        fixed["background"] = spec.backgrounds[0]
    if "size" not in raw_defaults and not _accepts(spec, "size", fixed["size"]):
        fixed["size"] = spec.sizes[0] if spec.sizes else "auto"
    spec = replace(spec, defaults=fixed)
    for key in ("size", "quality", "output_format", "background"):
        if not _accepts(spec, key, fixed[key]):
            raise fail(
                "defaults", f"'{key}' = '{str(fixed[key])[:40]}' is not one of its own values"
            )
    n = fixed["n"]
    if not isinstance(n, int) or not 1 <= n <= MAX_N_PER_JOB:
        raise fail("defaults", f"'n' must be from 1 to {MAX_N_PER_JOB}")
    return spec


# --- the running catalog ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProviderRoute:
    """Where an enabled model runs: an OpenAI-compatible server and the variable with its key.

    ``base_url`` and ``key_env`` of ``None`` mean the main provider (``OPENAI_BASE_URL``,
    ``OPENAI_API_KEY``).
    """

    base_url: str | None = None
    key_env: str | None = None


@dataclass(frozen=True, slots=True)
class EnabledModel:
    """One entry of ``IMAGEBOT_MODELS``."""

    name: str
    route: ProviderRoute = ProviderRoute()


def parse_enabled(text: str, default_model: str) -> tuple[EnabledModel, ...]:
    """``IMAGEBOT_MODELS``: a comma-separated list of names, or a JSON list whose entries
    are names or ``{"model": ..., "base_url": ..., "api_key_env": ...}``. Empty: the
    default model only. The first entry is the default for users who chose none."""
    text = text.strip()
    if not text:
        return (EnabledModel(default_model),)
    items: list[EnabledModel] = []
    if text.startswith("["):
        try:
            raw = json.loads(text)
        except ValueError as exc:
            raise ConfigurationError(f"IMAGEBOT_MODELS: not valid JSON ({exc})") from None
        if not isinstance(raw, list):
            raise ConfigurationError("IMAGEBOT_MODELS: expected a list of models")
        for i, entry in enumerate(raw):
            if isinstance(entry, str):
                items.append(EnabledModel(entry.strip()))
                continue
            if not isinstance(entry, dict) or not isinstance(entry.get("model"), str):
                raise ConfigurationError(
                    f"IMAGEBOT_MODELS entry {i + 1}: expected a name or "
                    '{"model": "...", "base_url": "...", "api_key_env": "..."}'
                )
            unknown = sorted(set(entry) - {"model", "base_url", "api_key_env"})
            if unknown:
                raise ConfigurationError(
                    f"IMAGEBOT_MODELS entry {i + 1} ({entry['model'][:40]}): unknown key "
                    f"'{unknown[0][:40]}'"
                )
            base_url = entry.get("base_url")
            key_env = entry.get("api_key_env")
            if base_url is not None and (
                not isinstance(base_url, str) or not re.match(r"^https?://", base_url)
            ):
                raise ConfigurationError(
                    f"IMAGEBOT_MODELS entry {i + 1} ({entry['model'][:40]}): base_url must be "
                    "an http(s) URL"
                )
            if key_env is not None and (
                not isinstance(key_env, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key_env)
            ):
                raise ConfigurationError(
                    f"IMAGEBOT_MODELS entry {i + 1} ({entry['model'][:40]}): api_key_env must "
                    "be the name of an environment variable"
                )
            items.append(EnabledModel(entry["model"].strip(), ProviderRoute(base_url, key_env)))
    else:
        items = [EnabledModel(p.strip()) for p in text.split(",") if p.strip()]
    seen: set[str] = set()
    for item in items:
        if not _NAME_RE.match(item.name):
            raise ConfigurationError(f"IMAGEBOT_MODELS: '{item.name[:40]}' is not a model name")
        if item.name in seen:
            raise ConfigurationError(f"IMAGEBOT_MODELS: '{item.name}' is listed twice")
        seen.add(item.name)
    if not items:
        raise ConfigurationError("IMAGEBOT_MODELS: no model listed")
    return tuple(items)


@dataclass
class ProviderStatus:
    """What the provider last said about a model."""

    known: bool | None = None
    """False when the provider no longer lists it; None before the first check."""
    shutdown_date: date | None = None


class ModelCatalog:
    """The running catalog of one process: the enabled models, what the provider says
    about them, and the option values the provider refused since start-up.

    Not persisted: a restart starts from the catalog file and asks the provider again.
    """

    def __init__(self, specs: Mapping[str, ModelSpec], enabled: Iterable[EnabledModel]) -> None:
        """``enabled`` must name at least one model; a name missing from ``specs`` is a
        compatible server's own model and gets the default model's table."""
        self._specs: dict[str, ModelSpec] = dict(specs)
        self._enabled: tuple[EnabledModel, ...] = tuple(enabled)
        if not self._enabled:
            raise ConfigurationError("IMAGEBOT_MODELS: no model listed")
        for item in self._enabled:
            if item.name not in self._specs:
                self._specs[item.name] = _unlisted(item.name, self._specs)
        self._refused: dict[str, dict[str, set[str]]] = {}
        self._status: dict[str, ProviderStatus] = {}

    # --- reading ---

    @property
    def enabled(self) -> tuple[EnabledModel, ...]:
        """The models the operator enabled, in their order."""
        return self._enabled

    @property
    def enabled_names(self) -> tuple[str, ...]:
        """The names of the enabled models."""
        return tuple(item.name for item in self._enabled)

    def all_specs(self) -> dict[str, ModelSpec]:
        """Every model of the catalog (enabled or not), as loaded."""
        return dict(self._specs)

    def route(self, model: str) -> ProviderRoute:
        """Where ``model`` runs (the main provider for a model that is not enabled)."""
        for item in self._enabled:
            if item.name == model:
                return item.route
        return ProviderRoute()

    def spec(self, model: str) -> ModelSpec:
        """The effective spec of ``model``: the catalog's, less what the provider refused."""
        base = self._specs.get(model) or _unlisted(model, self._specs)
        refused = self._refused.get(model)
        status = self._status.get(model)
        if status is not None and status.shutdown_date is not None:
            base = replace(base, shutdown_date=status.shutdown_date)
        if not refused:
            return base
        changes: dict[str, Any] = {}
        for option, attr in (
            ("quality", "qualities"),
            ("output_format", "formats"),
            ("background", "backgrounds"),
        ):
            if option in refused:
                changes[attr] = tuple(v for v in getattr(base, attr) if v not in refused[option])
        if "size" in refused:
            changes["sizes"] = tuple(v for v in base.sizes if v not in refused["size"])
            if "auto" in refused["size"]:
                changes["allows_auto_size"] = False
            if "*" in refused["size"]:
                changes["free_size"] = None
        for flag in ("input_fidelity", "moderation", "output_compression"):
            if flag in refused:
                changes[flag] = False
        return replace(base, **changes)

    def refused(self, model: str) -> dict[str, tuple[str, ...]]:
        """The option values the provider refused for ``model`` since start-up."""
        return {k: tuple(sorted(v)) for k, v in self._refused.get(model, {}).items()}

    def status(self, model: str) -> ProviderStatus:
        """What the provider last said about ``model``."""
        return self._status.get(model, ProviderStatus())

    def shutdown_date(self, model: str) -> date | None:
        """The provider's shutdown date for ``model``, else the catalog's."""
        status = self._status.get(model)
        if status is not None and status.shutdown_date is not None:
            return status.shutdown_date
        spec = self._specs.get(model)
        return spec.shutdown_date if spec else None

    def is_gone(self, model: str, today: date) -> bool:
        """True when ``model`` must not be used: retired, unknown to the provider, or past
        its shutdown date."""
        spec = self._specs.get(model)
        if spec is not None and spec.retired:
            return True
        status = self._status.get(model)
        if status is not None and status.known is False:
            return True
        shutdown = self.shutdown_date(model)
        return shutdown is not None and shutdown <= today

    def offered(self, today: date) -> tuple[str, ...]:
        """The enabled models users may choose today, in the operator's order."""
        return tuple(n for n in self.enabled_names if not self.is_gone(n, today))

    def default_model(self, today: date) -> str:
        """The model for users who chose none: the first offered one (the first enabled
        when none is offered, so the error names a model)."""
        offered = self.offered(today)
        return offered[0] if offered else self._enabled[0].name

    def replacement(self, model: str, today: date) -> str | None:
        """What a user's saved ``model`` becomes when it is gone: its successor chain's
        first offered model, else None."""
        seen = {model}
        current = self._specs.get(model)
        while current is not None and current.successor and current.successor not in seen:
            nxt = current.successor
            if nxt in self.offered(today):
                return nxt
            seen.add(nxt)
            current = self._specs.get(nxt)
        return None

    def choose(self, requested: str | None, saved: str | None, today: date) -> str:
        """The model of a new job: the one asked for (it must be offered), else the user's
        saved one (or its successor when it is gone), else the default.

        Raises :class:`InvalidRequest` naming the models on offer.
        """
        offered = self.offered(today)
        if requested:
            name = self.match(requested)
            if name is None or name not in offered:
                raise InvalidRequest(
                    msg(
                        "tg.model.unavailable",
                        model=_clip(requested),
                        models=", ".join(offered) or "-",
                    )
                )
            return name
        if saved and saved in offered:
            return saved
        if saved:
            successor = self.replacement(saved, today)
            if successor is not None:
                return successor
        return self.default_model(today)

    def match(self, text: str) -> str | None:
        """The enabled model named by ``text`` (its name or label, any case), else None."""
        wanted = text.strip().lower()
        for item in self._enabled:
            spec = self._specs[item.name]
            if wanted in (item.name.lower(), spec.label.lower()):
                return item.name
        return None

    # --- learning ---

    def mark_refused(self, model: str, option: str, value: str) -> bool:
        """Withdraw ``value`` of ``option`` for ``model`` (the provider refused it).

        ``value`` ``"*"`` for ``size`` withdraws free sizes; for a boolean field
        (``input_fidelity``, ``moderation``, ``output_compression``) any value withdraws
        the field. Returns True when this is new (so it is logged once).
        """
        values = self._refused.setdefault(model, {}).setdefault(option, set())
        if value in values:
            return False
        values.add(value)
        log.warning(
            "model option withdrawn: the provider refused %s=%s for model %s; no longer offered",
            option,
            value,
            model,
        )
        return True

    def note_provider(self, model: str, *, known: bool, shutdown_date: date | None) -> None:
        """Record what the provider says about ``model``."""
        self._status[model] = ProviderStatus(known=known, shutdown_date=shutdown_date)

    # --- prices ---

    def price_row(self, model: str) -> Mapping[str, int]:
        """Credits per square image by quality for ``model``."""
        return (self._specs.get(model) or _unlisted(model, self._specs)).prices


def build_catalog(settings: Settings, *, demo: bool) -> ModelCatalog:
    """The running model catalog of ``settings``: the shipped catalog with the operator's
    file over it, and the models ``IMAGEBOT_MODELS`` enables (only ``demo`` when the
    demo provider draws every image)."""
    specs = load_catalog(settings.models_file)
    if demo:
        return ModelCatalog(specs, [EnabledModel("demo")])
    return ModelCatalog(specs, parse_enabled(settings.models, settings.image_model))


def _unlisted(name: str, specs: Mapping[str, ModelSpec]) -> ModelSpec:
    """The table of a model the catalog does not list (a compatible server's own):
    the default model's, under its own name."""
    base = specs.get(DEFAULT_MODEL) or ModelSpec(DEFAULT_MODEL, free_size=FreeSizeRule())
    return replace(base, name=name, label=name, retired=False, shutdown_date=None, successor=None)


_SHIPPED: dict[str, ModelSpec] | None = None


def shipped_specs() -> dict[str, ModelSpec]:
    """The shipped catalog (read once per process)."""
    global _SHIPPED
    if _SHIPPED is None:
        _SHIPPED = load_catalog()
    return _SHIPPED


class _ShippedSpecs(Mapping[str, ModelSpec]):
    """``MODEL_SPECS``: the shipped catalog as a mapping, read on first use."""

    def __getitem__(self, key: str) -> ModelSpec:
        return shipped_specs()[key]

    def __iter__(self) -> Any:
        return iter(shipped_specs())

    def __len__(self) -> int:
        return len(shipped_specs())


MODEL_SPECS: Mapping[str, ModelSpec] = _ShippedSpecs()
"""The shipped catalog by name (the running one is a :class:`ModelCatalog`)."""


def spec_for(model: str) -> ModelSpec:
    """The shipped spec of ``model``; an unknown name (a compatible server's own) gets
    the default model's table."""
    specs = shipped_specs()
    return specs.get(model) or _unlisted(model, specs)


# --- checking options ---------------------------------------------------------------------------


def parse_size(value: str) -> tuple[int, int] | None:
    """``"1536x1024"`` -> ``(1536, 1024)``; None for ``auto`` or malformed text."""
    m = _SIZE_RE.match(value.strip().lower())
    if not m:
        return None
    return int(m.group(1)), int(m.group(2))


def allowed_sizes_text(spec: ModelSpec) -> str:
    """Human list of accepted sizes."""
    sizes = list(spec.sizes) + (["auto"] if spec.allows_auto_size else [])
    text = ", ".join(sizes)
    if spec.free_size is not None:
        text += f" (or {spec.free_size.text()})"
    return text


def nearest_size(ratio: float, spec: ModelSpec) -> str:
    """The allowed fixed size whose aspect ratio is closest to ``ratio`` (w/h)."""

    def distance(size: str) -> float:
        parsed = parse_size(size)
        assert parsed is not None
        return abs(parsed[0] / parsed[1] - ratio)

    sizes = spec.sizes or FIXED_SIZES
    return min(sizes, key=distance)


def values_text(spec: ModelSpec, option: str) -> str:
    """The values ``spec`` accepts for ``option``, in words (for "use ... instead")."""
    if option == "size":
        return allowed_sizes_text(spec)
    attr = {"quality": "qualities", "output_format": "formats", "background": "backgrounds"}
    values = getattr(spec, attr[option], ()) if option in attr else ()
    return ", ".join(values)


def resolve_options(
    options: GenerateOptions,
    *,
    model: str,
    defaults: UserSettingsView | None = None,
    has_inputs: bool = False,
    catalog: ModelCatalog | None = None,
) -> ResolvedOptions:
    """Apply the user's defaults, then the model's, and check every value against the
    model's spec (the running ``catalog``'s when given, else the shipped one).

    Raises :class:`InvalidRequest` naming the value and what is accepted.
    """
    spec = catalog.spec(model) if catalog is not None else spec_for(model)
    if spec.retired:
        raise InvalidRequest(msg("tg.model.retired", model=model))
    return resolve_with(spec, options, defaults)


def resolve_with(
    spec: ModelSpec, options: GenerateOptions, defaults: UserSettingsView | None = None
) -> ResolvedOptions:
    """:func:`resolve_options` against one spec."""
    user = defaults or UserSettingsView()

    def pick(name: str) -> object:
        value = getattr(options, name)
        if value is None:
            value = getattr(user, name)
            # A saved default this model does not take (saved for another model, or
            # withdrawn since) gives way to the model's own; only what the user typed now
            # is refused.
            if value is not None and not _accepts(spec, name, value):
                value = None
        if value is None:
            value = spec.defaults.get(name, DEFAULTS[name])
        return value

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
                msg("tg.model.size", value="auto", model=spec.name, sizes=allowed_sizes_text(spec))
            )
    elif size not in spec.sizes:
        parsed = parse_size(size)
        if not (spec.free_size is not None and parsed and spec.free_size.accepts(*parsed)):
            raise InvalidRequest(
                msg(
                    "tg.model.size",
                    value=_clip(size),
                    model=spec.name,
                    sizes=allowed_sizes_text(spec),
                )
            )
    if quality not in spec.qualities:
        raise InvalidRequest(
            msg(
                "tg.model.quality",
                value=_clip(quality),
                model=spec.name,
                qualities=", ".join(spec.qualities),
            )
        )
    if fmt not in spec.formats:
        raise InvalidRequest(
            msg(
                "tg.model.format",
                value=_clip(fmt),
                model=spec.name,
                formats=", ".join(spec.formats),
            )
        )
    if background not in spec.backgrounds:
        raise InvalidRequest(
            msg(
                "tg.model.background",
                value=_clip(background),
                model=spec.name,
                backgrounds=", ".join(spec.backgrounds),
            )
        )
    if background == "transparent" and fmt == "jpeg":
        raise InvalidRequest(msg("tg.model.transparent_jpeg"))
    try:
        n = int(str(n_raw))
    except ValueError:
        raise InvalidRequest(msg("tg.model.n_whole", max=MAX_N_PER_JOB)) from None
    if not 1 <= n <= MAX_N_PER_JOB:
        raise InvalidRequest(msg("tg.model.n_range", max=MAX_N_PER_JOB))
    return ResolvedOptions(
        model=spec.name,
        size=size,
        quality=quality,
        output_format=fmt,
        background=background,
        n=n,
    )


def _accepts(spec: ModelSpec, name: str, value: object) -> bool:
    """True when ``spec`` takes ``value`` for option ``name``."""
    text = str(value).strip().lower()
    if name == "size":
        if text == "auto":
            return spec.allows_auto_size
        parsed = parse_size(text)
        return text in spec.sizes or bool(
            spec.free_size is not None and parsed and spec.free_size.accepts(*parsed)
        )
    if name == "quality":
        return text in spec.qualities
    if name == "output_format":
        return ("jpeg" if text == "jpg" else text) in spec.formats
    if name == "background":
        return text in spec.backgrounds
    return True


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
