"""The OpenAI Images provider: GPT Image generation and editing through the ``openai`` SDK.

One :class:`OpenAIImageModel` wraps one ``openai.AsyncOpenAI`` client. The SDK does the
retrying (429, 408, 409, >= 500 and connection errors, with backoff that honours
``retry-after`` / ``retry-after-ms``); this module only translates what is left into the
error tree of :mod:`core.errors`:

=====================================================  ======================================
what the SDK raised                                    what :meth:`OpenAIImageModel.run` raises
=====================================================  ======================================
400 ``moderation_blocked`` (also inside a stream)      :class:`ContentRefused` (categories, stage)
other 400 / 404 / 413 / 422                            :class:`ProviderRejected` (precise reason)
401 / 403                                              :class:`ProviderUnavailable` (+ operator log)
429 (also ``insufficient_quota``), >= 500, network     :class:`ProviderUnavailable`
an error event inside a stream                         :class:`ProviderUnavailable`
empty or undecodable image data                        :class:`ProviderUnavailable`
=====================================================  ======================================

Privacy (P21): the service receives the prompt, the images, the options and
``call.user_hash`` (as ``user`` and ``safety_identifier``), nothing else about the person;
uploaded files get neutral names (``image-1.png``), never the name they were sent with.
Logs (logger ``imagebot.provider``) carry status, error code, param and the request id,
never the prompt or the key. The SDK's own exception text never reaches a user.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import openai

from core.errors import ContentRefused, ProviderRejected, ProviderUnavailable, UserFacingError
from core.model_specs import MODEL_SPECS, spec_for
from core.ports import ModelCall, ModelEvent, ModelImage, ModelPartial
from core.types import InputImage

logger = logging.getLogger("imagebot.provider")

CONTENT_TYPES = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "jpg": "image/jpeg",
    "webp": "image/webp",
}
_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}
_MAX_PARTIALS = 3
_MAX_USER_MESSAGE = 300
_CHECK_TIMEOUT = 20.0

_PARAM_WORDS = {
    "size": "that size",
    "quality": "that quality",
    "background": "that background",
    "output_format": "that format",
    "output_compression": "that compression level",
    "n": "that number of images",
    "prompt": "that prompt",
    "image": "one of the reference images",
    "image[]": "one of the reference images",
    "mask": "that mask",
    "partial_images": "that number of previews",
    "input_fidelity": "that input fidelity",
}
"""How a rejected request field is named to the user."""

_SECRETISH = re.compile(
    r"(?:\b(?:sk|rk|pk|sess|org|proj)-[A-Za-z0-9_*\-]{6,})"  # keys, masked keys, org ids
    r"|(?:Bearer\s+\S+)"
    r"|(?:\b[A-Za-z0-9_\-]{40,}\b)"  # long opaque tokens
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


class OpenAIImageModel:
    """GPT Image models (``gpt-image-2`` and friends) through OpenAI's Images API.

    Implements :class:`core.ports.ImageModel`.
    """

    name = "openai"
    notice = ""

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None,
        model: str,
        max_retries: int = 3,
        timeout: float = 300.0,
    ) -> None:
        """Build the client; no network traffic happens until :meth:`run` or :meth:`check`.

        ``max_retries`` is the SDK's retry budget per request (so up to ``max_retries + 1``
        attempts); ``timeout`` applies to each attempt (connecting gets at most 10 s).
        """
        self._model = model
        self._api_key = api_key
        self._max_retries = max_retries
        self._timeout = timeout
        self._client = openai.AsyncOpenAI(
            api_key=api_key,
            base_url=base_url,
            max_retries=max_retries,
            timeout=openai.Timeout(timeout, connect=min(10.0, timeout)),
        )

    @property
    def model(self) -> str:
        """The configured model name."""
        return self._model

    # --- ImageModel -----------------------------------------------------------------------

    async def run(self, call: ModelCall) -> AsyncIterator[ModelEvent]:
        """Generate (no inputs) or edit (inputs), yielding partials, then every final image.

        Streams previews when ``call.stream_partials > 0``, the model streams and one image
        is asked for; otherwise makes one plain request and yields one image per result.
        Raises :class:`ContentRefused`, :class:`ProviderRejected` or
        :class:`ProviderUnavailable` (see the module docstring).
        """
        options = call.options
        model = options.model or self._model
        spec = spec_for(model)
        kind = "edit" if call.inputs else "generate"
        if len(call.inputs) > spec.max_inputs:
            raise ProviderRejected(
                f"The image service takes at most {spec.max_inputs} reference images; "
                f"{len(call.inputs)} were given."
            )
        stream = call.stream_partials > 0 and spec.streams and options.n == 1
        fields = self._fields(call, model)
        requested_type = CONTENT_TYPES.get(options.output_format, "image/png")
        request_id: str | None = None
        try:
            if stream:
                partials = min(call.stream_partials, _MAX_PARTIALS)
                if call.inputs:
                    events: Any = await self._client.images.edit(
                        **self._files(call), **fields, stream=True, partial_images=partials
                    )
                else:
                    events = await self._client.images.generate(
                        **fields, stream=True, partial_images=partials
                    )
                request_id = events.response.headers.get("x-request-id")
                finals = 0
                async with events:
                    async for event in events:
                        event_type = str(getattr(event, "type", ""))
                        content_type = CONTENT_TYPES.get(
                            str(getattr(event, "output_format", "")), requested_type
                        )
                        if event_type.endswith(".partial_image"):
                            data = _decode(event.b64_json, kind, request_id)
                            yield ModelPartial(
                                index=int(event.partial_image_index),
                                data=data,
                                content_type=content_type,
                            )
                        elif event_type.endswith(".completed"):
                            finals += 1
                            yield ModelImage(
                                data=_decode(event.b64_json, kind, request_id),
                                content_type=content_type,
                            )
                if finals == 0:
                    logger.warning(
                        "image %s stream ended without a final image request_id=%s",
                        kind,
                        request_id,
                    )
                    raise ProviderUnavailable()
            else:
                if call.inputs:
                    result = await self._client.images.edit(**self._files(call), **fields)
                else:
                    result = await self._client.images.generate(**fields)
                request_id = getattr(result, "_request_id", None)
                content_type = CONTENT_TYPES.get(str(result.output_format or ""), requested_type)
                items = result.data or []
                if not items:
                    logger.warning("image %s answer held no images request_id=%s", kind, request_id)
                    raise ProviderUnavailable()
                for item in items:
                    yield ModelImage(
                        data=_decode(item.b64_json, kind, request_id), content_type=content_type
                    )
        except openai.OpenAIError as err:
            raise self._translate(err, kind=kind, call=call, request_id=request_id) from None
        except ValueError as err:  # malformed JSON or events from the service
            logger.warning(
                "image %s answer could not be read (%s) request_id=%s",
                kind,
                type(err).__name__,
                request_id,
            )
            raise ProviderUnavailable() from None

    async def check(self) -> str | None:
        """Check the configured model with ``GET /v1/models/{model}``.

        Returns a warning for the operator when the model is unknown, retired or scheduled
        to be shut down, or when the check itself failed; ``None`` when all is well. Never
        raises for network or service errors.
        """
        model = self._model
        spec = MODEL_SPECS.get(model)
        if spec is not None and spec.retired:
            return (
                f"The image model '{model}' has been retired by OpenAI; set "
                "IMAGEBOT_IMAGE_MODEL to a current model such as gpt-image-2."
            )
        client = self._client.with_options(
            max_retries=min(self._max_retries, 1), timeout=min(self._timeout, _CHECK_TIMEOUT)
        )
        try:
            info = await client.models.retrieve(model)
        except openai.NotFoundError as err:
            logger.warning("model check: %s not found request_id=%s", model, err.request_id)
            return (
                f"The image model '{model}' is not known to the image service (404); check "
                "IMAGEBOT_IMAGE_MODEL and that the API key's project may use it."
            )
        except openai.AuthenticationError as err:
            logger.error("model check: the API key was refused request_id=%s", err.request_id)
            return (
                f"Could not check the image model '{model}': the image service refused the API "
                "key (401). Check OPENAI_API_KEY."
            )
        except openai.PermissionDeniedError as err:
            logger.error("model check: permission denied request_id=%s", err.request_id)
            return (
                f"Could not check the image model '{model}': the image service denied access "
                "(403). The organization may need verification for GPT image models."
            )
        except Exception as err:  # network, timeouts, 5xx, odd answers: never fatal
            logger.warning("model check failed: %s", type(err).__name__)
            return (
                f"Could not check the image model '{model}': the image service did not answer "
                f"({type(err).__name__}). Image jobs may fail until it does."
            )
        shutdown = _parse_date(getattr(info, "shutdown_date", None))
        if shutdown is not None:
            today = datetime.now(UTC).date()
            if shutdown <= today:
                return (
                    f"The image model '{model}' was shut down on {shutdown.isoformat()}; set "
                    "IMAGEBOT_IMAGE_MODEL to a current model."
                )
            return (
                f"The image model '{model}' is scheduled to be shut down on "
                f"{shutdown.isoformat()}; plan to switch IMAGEBOT_IMAGE_MODEL before then."
            )
        return None

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._client.close()

    # --- request building -----------------------------------------------------------------

    def _fields(self, call: ModelCall, model: str) -> dict[str, Any]:
        """The form/JSON fields common to generate and edit ("auto" defaults left out)."""
        options = call.options
        fields: dict[str, Any] = {
            "model": model,
            "prompt": call.prompt,
            "n": options.n,
            "output_format": options.output_format,
            "user": call.user_hash,
            "safety_identifier": call.user_hash,
        }
        if options.size and options.size != "auto":
            fields["size"] = options.size
        if options.quality and options.quality != "auto":
            fields["quality"] = options.quality
        if options.background and options.background != "auto":
            fields["background"] = options.background
        return fields

    def _files(self, call: ModelCall) -> dict[str, Any]:
        """The ``image`` (always a list, so the parts are ``image[]``) and ``mask`` files."""
        files: dict[str, Any] = {
            "image": [_file(img, f"image-{i}") for i, img in enumerate(call.inputs, start=1)]
        }
        if call.mask is not None:
            files["mask"] = _file(call.mask, "mask")
        return files

    # --- error translation ------------------------------------------------------------------

    def _translate(
        self, err: openai.OpenAIError, *, kind: str, call: ModelCall, request_id: str | None
    ) -> UserFacingError:
        """Map an SDK exception to the error tree, logging what the operator needs."""
        status = err.status_code if isinstance(err, openai.APIStatusError) else None
        if isinstance(err, openai.APIStatusError):
            request_id = err.request_id or request_id
        body = err.body if isinstance(err, openai.APIError) else None
        error = body if isinstance(body, dict) else {}
        code = err.code if isinstance(err, openai.APIError) else None
        param = err.param if isinstance(err, openai.APIError) else None
        err_type = err.type if isinstance(err, openai.APIError) else None
        if code is None and isinstance(error.get("code"), str):
            code = error["code"]

        def log(level: int, what: str) -> None:
            logger.log(
                level,
                "image %s failed: %s status=%s type=%s code=%s param=%s request_id=%s",
                kind,
                what,
                status,
                err_type,
                code,
                param,
                request_id,
            )

        if code == "moderation_blocked":
            details = error.get("moderation_details")
            details = details if isinstance(details, dict) else {}
            categories = details.get("categories")
            reason = (
                ", ".join(str(c) for c in categories if c) if isinstance(categories, list) else ""
            )
            stage = str(details.get("moderation_stage") or "input")
            log(logging.WARNING, f"safety refusal at {stage}")
            return ContentRefused(reason=_clean(reason, 120), stage=stage)

        if isinstance(err, openai.APITimeoutError):
            log(logging.WARNING, "timed out after retries")
            return ProviderUnavailable()
        if isinstance(err, openai.APIConnectionError):
            log(logging.WARNING, "could not connect after retries")
            return ProviderUnavailable()
        if isinstance(err, openai.AuthenticationError):
            log(logging.ERROR, "the API key was refused; check OPENAI_API_KEY")
            return ProviderUnavailable()
        if isinstance(err, openai.PermissionDeniedError):
            log(
                logging.ERROR,
                "permission denied; the OpenAI organization may need verification for GPT "
                f"image models, or the key's project may not use {self._model}",
            )
            return ProviderUnavailable()
        if isinstance(err, openai.RateLimitError):
            if code == "insufficient_quota" or err_type == "insufficient_quota":
                log(logging.ERROR, "the OpenAI account has no quota left; add credit")
            else:
                log(logging.WARNING, "rate limited after retries")
            return ProviderUnavailable()
        if status is not None and status in (400, 404, 413, 422):
            log(logging.WARNING, "request rejected")
            if status == 404 or param == "model" or code == "model_not_found":
                logger.error(
                    "the image service does not offer the model %s; check IMAGEBOT_IMAGE_MODEL",
                    call.options.model or self._model,
                )
            return ProviderRejected(self._rejection_message(error, status, param, code, call))
        if status is not None:
            log(logging.WARNING, "service error after retries")
            return ProviderUnavailable()
        # A plain APIError: an error event inside a stream, or an unreadable answer.
        log(logging.WARNING, "error event in the stream")
        return ProviderUnavailable()

    def _rejection_message(
        self,
        error: dict[str, Any],
        status: int,
        param: str | None,
        code: str | None,
        call: ModelCall,
    ) -> str:
        """A precise reason for the user, at most ~300 characters, without secrets."""
        options = call.options
        sent = {
            "size": options.size,
            "quality": options.quality,
            "background": options.background,
            "output_format": options.output_format,
            "n": str(options.n),
            "prompt": f"{len(call.prompt)} characters",
            "image": f"{len(call.inputs)} image(s)",
            "image[]": f"{len(call.inputs)} image(s)",
        }
        if status == 413:
            head = "The images sent are too large for the image service"
        elif status == 404 or param == "model" or code == "model_not_found":
            head = (
                f"The image service does not offer the model {_clean(options.model, 40)}; "
                "please tell the operator"
            )
        elif param and param in _PARAM_WORDS:
            value = sent.get(param)
            head = f"The image service does not accept {_PARAM_WORDS[param]}"
            if value:
                head += f" ({_clean(value, 40)})"
        else:
            head = "The image service could not carry out this request"
        detail = ""
        if error.get("type") in ("invalid_request_error", "image_generation_user_error"):
            message = error.get("message")
            if isinstance(message, str):
                if len(self._api_key) >= 8:
                    message = message.replace(self._api_key, "[key]")
                detail = _clean(message, _MAX_USER_MESSAGE)
        text = f"{head}: {detail}" if detail else f"{head}."
        return _clip(text, _MAX_USER_MESSAGE)


# --- helpers ----------------------------------------------------------------------------------


def _file(image: InputImage, stem: str) -> tuple[str, bytes, str]:
    """``(neutral filename, bytes, content type)`` for the multipart upload."""
    content_type = image.content_type.lower().strip()
    if content_type == "image/jpg":
        content_type = "image/jpeg"
    return f"{stem}.{_EXTENSIONS.get(content_type, 'png')}", image.data, content_type


def _decode(b64: object, kind: str, request_id: str | None) -> bytes:
    """Decode one base64 image; empty or broken data means the service failed."""
    data = b""
    if isinstance(b64, str) and b64:
        try:
            data = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError):
            data = b""
    if not data:
        logger.warning(
            "image %s answer had empty or undecodable image data request_id=%s", kind, request_id
        )
        raise ProviderUnavailable()
    return data


def _clean(text: str, limit: int) -> str:
    """Strip key-like tokens and control characters; clip to ``limit`` characters."""
    text = _SECRETISH.sub("[redacted]", text)
    text = _CONTROL.sub(" ", text).strip()
    return _clip(text, limit)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _parse_date(value: object) -> date | None:
    """``"YYYY-MM-DD"`` (or an ISO timestamp, or epoch seconds) -> date; None otherwise."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC).date()
    if isinstance(value, str) and value:
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None
