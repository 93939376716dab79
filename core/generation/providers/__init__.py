"""Image model providers: OpenAI's API (or a compatible server) and the local demo."""

from __future__ import annotations

from core.errors import ConfigurationError
from core.generation.ports import ImageModel
from core.settings import Settings


def build_image_model(settings: Settings, *, console: bool) -> ImageModel:
    """The provider the settings ask for.

    ``imagebot run`` never falls back to the demo: without a key it refuses to start, so
    real users never pay for placeholders. The console uses the demo when no key is set.
    """
    provider = settings.effective_provider(console=console)
    if provider == "demo":
        from core.generation.providers.demo import DemoImageModel

        return DemoImageModel(latency=0.6 if console else 0.0)
    if settings.openai_api_key is None:
        raise ConfigurationError(
            "OPENAI_API_KEY is not set, so there is no image model. Set it (and "
            "OPENAI_BASE_URL for a compatible server), or set IMAGEBOT_IMAGE_PROVIDER=demo "
            "to run with labelled placeholder images."
        )
    from core.generation.providers.openai_images import OpenAIImageModel

    return OpenAIImageModel(
        api_key=settings.openai_api_key.get_secret_value(),
        base_url=settings.openai_base_url,
        model=settings.image_model,
        max_retries=settings.provider_max_retries,
        timeout=settings.provider_timeout_seconds,
    )
