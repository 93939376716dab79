"""Image model providers: OpenAI's API (or compatible servers), the local demo, and the
router that sends each job to the provider serving its model."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import date

from core.errors import ConfigurationError, OptionRefused
from core.generation.models import ModelCatalog, ModelSpec, values_text
from core.generation.ports import ImageModel, ModelCall, ModelEvent, ModelLookup
from core.i18n import Msg, msg
from core.settings import Settings

log = logging.getLogger("imagebot.provider")

OPTION_WORDS = {
    "size": "tg.optword.size",
    "quality": "tg.optword.quality",
    "output_format": "tg.optword.format",
    "background": "tg.optword.background",
    "input_fidelity": "tg.optword.input_fidelity",
    "moderation": "tg.optword.moderation",
    "output_compression": "tg.optword.compression",
}
"""How a refused request field is named to the user."""


def build_image_model(
    settings: Settings,
    *,
    console: bool,
    catalog: ModelCatalog | None = None,
    today: Callable[[], date] | None = None,
) -> ImageModel:
    """The provider(s) the settings ask for.

    ``imagebot run`` never falls back to the demo: without a key it refuses to start, so
    real users never pay for placeholders. The console uses the demo when no key is set.
    With a ``catalog``, each enabled model runs on its own provider (``IMAGEBOT_MODELS``
    may give a model its own ``base_url`` and key variable) behind one router.
    """
    provider = settings.effective_provider(console=console)
    if provider == "demo":
        from core.generation.providers.demo import DemoImageModel

        demo_model = DemoImageModel(latency=0.6 if console else 0.0)
        if catalog is None:
            return demo_model
        return CatalogRouter(catalog, {}, demo_model, today=today)
    if catalog is None:
        return _openai(settings, settings.image_model, None, None, None)
    backends: dict[str, ImageModel] = {}
    clients: dict[tuple[str | None, str | None], ImageModel] = {}
    for item in catalog.enabled:
        spec = catalog.spec(item.name)
        if spec.provider == "demo":
            from core.generation.providers.demo import DemoImageModel

            backends[item.name] = DemoImageModel(latency=0.0)
            continue
        key = (item.route.base_url, item.route.key_env)
        if key not in clients:
            clients[key] = _openai(
                settings, item.name, item.route.base_url, item.route.key_env, catalog
            )
        backends[item.name] = clients[key]
    default = backends[catalog.enabled_names[0]]
    return CatalogRouter(catalog, backends, default, today=today)


def _openai(
    settings: Settings,
    model: str,
    base_url: str | None,
    key_env: str | None,
    catalog: ModelCatalog | None,
) -> ImageModel:
    """One OpenAI-compatible client: the main provider, or a model's own."""
    if key_env is not None:
        raw = os.environ.get(key_env, "").strip()
        if not raw:
            raise ConfigurationError(
                f"IMAGEBOT_MODELS: the model {model} takes its key from {key_env}, which is "
                "not set."
            )
        api_key = raw
    elif settings.openai_api_key is None:
        raise ConfigurationError(
            "OPENAI_API_KEY is not set, so there is no image model. Set it (and "
            "OPENAI_BASE_URL for a compatible server), or set IMAGEBOT_IMAGE_PROVIDER=demo "
            "to run with labelled placeholder images."
        )
    else:
        api_key = settings.openai_api_key.get_secret_value()
    from core.generation.providers.openai_images import OpenAIImageModel

    spec_of: Callable[[str], ModelSpec] | None = catalog.spec if catalog is not None else None
    return OpenAIImageModel(
        api_key=api_key,
        base_url=base_url or settings.openai_base_url,
        model=model,
        max_retries=settings.provider_max_retries,
        timeout=settings.provider_timeout_seconds,
        moderation=settings.image_moderation,
        output_compression=settings.output_compression,
        input_fidelity=settings.input_fidelity,
        spec_of=spec_of,
    )


class CatalogRouter:
    """Sends each job to the provider serving its model, and learns from refusals.

    Implements :class:`core.generation.ports.ImageModel`. A job keeps the model it was
    priced with; only when that model has since gone (shut down, unknown to its
    provider) does it run on the model's successor, at the price it was quoted. A 400
    saying the model does not take an option withdraws that option from the running
    catalog and ends the job with a message naming what to use instead.
    """

    def __init__(
        self,
        catalog: ModelCatalog,
        backends: dict[str, ImageModel],
        default: ImageModel,
        *,
        today: Callable[[], date] | None = None,
    ) -> None:
        """``backends`` maps enabled model names to providers; others go to ``default``."""
        self.catalog = catalog
        self._backends = backends
        self._default = default
        self._today = today or date.today
        self.name = default.name
        self.notice = default.notice

    def backend(self, model: str) -> ImageModel:
        """The provider serving ``model``."""
        return self._backends.get(model, self._default)

    def directories(self) -> list[tuple[ImageModel, list[str]]]:
        """Each distinct provider with the enabled models it serves."""
        grouped: dict[int, tuple[ImageModel, list[str]]] = {}
        for name in self.catalog.enabled_names:
            backend = self.backend(name)
            grouped.setdefault(id(backend), (backend, []))[1].append(name)
        return list(grouped.values())

    async def run(self, call: ModelCall) -> AsyncIterator[ModelEvent]:
        """Run ``call`` on its model's provider (see the class docstring)."""
        model = call.options.model
        today = self._today()
        if self.catalog.is_gone(model, today):
            successor = self.catalog.replacement(model, today)
            if successor is not None:
                log.warning(
                    "model %s is gone; a queued job runs on its successor %s at its quoted price",
                    model,
                    successor,
                )
                call = replace(call, options=replace(call.options, model=successor))
                model = successor
        try:
            async for event in self.backend(model).run(call):
                yield event
        except OptionRefused as exc:
            self.catalog.mark_refused(model, exc.option, exc.value)
            raise OptionRefused(
                refused_message(self.catalog.spec(model), exc.option, exc.value),
                model=model,
                option=exc.option,
                value=exc.value,
            ) from None

    async def check(self) -> str | None:
        """The default provider's own check of its model."""
        return await self._default.check()

    async def lookup(self) -> dict[str, ModelLookup]:
        """What each enabled model's provider says about it (models of providers that
        cannot say are left out)."""
        found: dict[str, ModelLookup] = {}
        for backend, names in self.directories():
            lookup = getattr(backend, "lookup", None)
            if lookup is None:
                continue
            found.update(await lookup(names))
        return found

    async def aclose(self) -> None:
        """Close every provider's connections."""
        closed: set[int] = set()
        for backend in [self._default, *self._backends.values()]:
            if id(backend) not in closed:
                closed.add(id(backend))
                await backend.aclose()


def refused_message(spec: ModelSpec, option: str, value: str) -> Msg:
    """What a user reads when the provider refused an option of ``spec``'s model: the
    option, the value, and what to use instead (``spec`` is the catalog's after the
    refusal was learned)."""
    key = OPTION_WORDS.get(option)
    words: Msg | str = Msg(key) if key else option
    if option in ("input_fidelity", "moderation", "output_compression") or value == "*":
        if option == "size":
            return msg(
                "tg.refused.custom_size", model=spec.display, sizes=values_text(spec, "size")
            )
        return msg("tg.refused.setting", model=spec.display, setting=words)
    instead: Msg | str = values_text(spec, option) or msg("tg.refused.the_default")
    return msg(
        "tg.refused.value", model=spec.display, setting=words, value=value[:40], instead=instead
    )
