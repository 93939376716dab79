"""The OpenAI Images provider: GPT Image generation and editing through the ``openai`` SDK.

One :class:`OpenAIImageModel` wraps one ``openai.AsyncOpenAI`` client (on the SDK's
aiohttp transport when it is available). The SDK builds the requests and does the
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

Answers are read through the SDK's raw-response path and parsed here, because the
images are large (≈3 MB of base64 each at 1024x1024): the body is parsed with ``jiter``
and the images decoded with ``pybase64`` (each falls back to the standard library), and
a stream is split into events by :class:`SSEParser`, which scans every byte once. The
answer is dropped before the first image is handed out, so only decoded images stay
alive while the caller works on one.

Privacy (P21): the service receives the prompt, the images, the options and
``call.user_hash`` (as ``user`` and ``safety_identifier``), nothing else about the person;
uploaded files get neutral names (``image-1.png``), never the name they were sent with.
Logs (logger ``imagebot.provider``) carry status, error code, param and the request id,
never the prompt or the key. The SDK's own exception text never reaches a user.
"""

from __future__ import annotations

import binascii
import contextlib
import json
import logging
import re
import sys
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import openai

from core.errors import (
    ContentRefused,
    OptionRefused,
    ProviderRejected,
    ProviderUnavailable,
    UserFacingError,
)
from core.generation.capacity import report_response
from core.generation.models import MODEL_SPECS, ModelSpec, spec_for
from core.generation.ports import ModelCall, ModelEvent, ModelImage, ModelLookup, ModelPartial
from core.types import InputImage

_b64decode: Callable[..., bytes]
try:  # SIMD base64: ≈40x faster than the standard library on a 3 MB image
    from pybase64 import b64decode as _b64decode
except ImportError:  # pragma: no cover - pybase64 is a dependency
    from base64 import b64decode as _b64decode

_loads: Callable[[bytes], Any]
try:  # installed with openai; ≈7x faster than json on an answer holding 3 MB strings
    from jiter import from_json as _from_json

    def _loads(data: bytes) -> Any:
        return _from_json(data, cache_mode="keys")

except ImportError:  # pragma: no cover
    _loads = json.loads

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


def _timeout_errors() -> tuple[type[BaseException], ...]:
    """Timeouts that reading a streamed body may raise (looked up when one is raised).

    The SDK maps these to ``APITimeoutError`` while it sends a request and reads a plain
    answer; a stream read here, after the SDK returned, needs the same mapping.
    """
    errors: list[type[BaseException]] = [TimeoutError]
    for name in ("httpx2", "httpx"):  # whichever the SDK loaded (httpx2 from openai 3)
        module = sys.modules.get(name)
        if module is not None:
            errors.append(module.TimeoutException)
    return tuple(errors)


def _network_errors() -> tuple[type[BaseException], ...]:
    """Network errors that reading a streamed body may raise (``APIConnectionError``)."""
    errors: list[type[BaseException]] = [OSError]
    for name in ("httpx2", "httpx"):
        module = sys.modules.get(name)
        if module is not None:
            errors.append(module.RequestError)
    aiohttp = sys.modules.get("aiohttp")  # the SDK's aiohttp transport, when in use
    if aiohttp is not None:
        errors.append(aiohttp.ClientError)
    return tuple(errors)


async def _report_limits(response: Any) -> None:
    """Every answer (retried attempts too) tells the worker's capacity about the limits."""
    report_response(response.status_code, response.headers)


def _http_client() -> Any:
    """The SDK's aiohttp transport when this SDK has it (less CPU per megabyte received
    than its default HTTP stack), else ``None`` (the SDK's default client)."""
    factory = getattr(openai, "DefaultAioHttpClient", None)
    if factory is None:  # pragma: no cover - older SDKs
        return None
    try:
        return factory(event_hooks={"response": [_report_limits]})
    except (ImportError, RuntimeError):  # pragma: no cover - the aiohttp extra is missing
        return None


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
        moderation: str = "auto",
        output_compression: int | None = None,
        input_fidelity: str | None = None,
        spec_of: Callable[[str], ModelSpec] | None = None,
    ) -> None:
        """Build the client; no network traffic happens until :meth:`run` or :meth:`check`.

        ``max_retries`` is the SDK's retry budget per request (so up to ``max_retries + 1``
        attempts); ``timeout`` applies to each attempt (connecting gets at most 10 s).
        """
        self._model = model
        self._moderation = moderation
        self._output_compression = output_compression
        self._input_fidelity = input_fidelity
        self._spec_of: Callable[[str], ModelSpec] = spec_of or spec_for
        self._api_key = api_key
        self._max_retries = max_retries
        self._timeout = timeout
        self._client = openai.AsyncOpenAI(
            api_key=api_key,
            base_url=base_url,
            max_retries=max_retries,
            timeout=openai.Timeout(timeout, connect=min(10.0, timeout)),
            http_client=_http_client(),
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
        spec = self._spec_of(model)
        kind = "edit" if call.inputs else "generate"
        if len(call.inputs) > spec.max_inputs:
            raise ProviderRejected(
                f"The image service takes at most {spec.max_inputs} reference images; "
                f"{len(call.inputs)} were given."
            )
        stream = call.stream_partials > 0 and spec.streams and options.n == 1
        fields = self._fields(call, model, spec)
        requested_type = CONTENT_TYPES.get(options.output_format, "image/png")
        request_id: str | None = None
        try:
            if stream:
                partials = min(call.stream_partials, _MAX_PARTIALS)
                images = self._client.images.with_streaming_response
                request: Any
                if call.inputs:
                    request = images.edit(
                        **self._files(call), **fields, stream=True, partial_images=partials
                    )
                else:
                    request = images.generate(**fields, stream=True, partial_images=partials)
                finals = 0
                async with request as response:
                    request_id = response.request_id
                    events = _stream_events(response, kind, request_id, requested_type)
                    async with contextlib.aclosing(events):
                        async for event in events:
                            if isinstance(event, ModelImage):
                                finals += 1
                            yield event
                            del event  # the caller has it; do not keep it while reading on
                if finals == 0:
                    logger.warning(
                        "image %s stream ended without a final image request_id=%s",
                        kind,
                        request_id,
                    )
                    raise ProviderUnavailable()
            else:
                raw: Any
                if call.inputs:
                    raw = await self._client.images.with_raw_response.edit(
                        **self._files(call), **fields
                    )
                else:
                    raw = await self._client.images.with_raw_response.generate(**fields)
                request_id = raw.request_id
                body: bytes = raw.content
                del raw  # the HTTP response holds the body too
                decoded = _plain_images(body, kind, request_id, requested_type)
                del body  # only the decoded images stay alive while the caller works
                decoded.reverse()
                while decoded:
                    image = decoded.pop()
                    yield image
                    del image
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

    async def lookup(self, models: Iterable[str]) -> dict[str, ModelLookup]:
        """What the service says about each of ``models``: ``GET /v1/models`` once, then
        ``GET /v1/models/{model}`` for each. Never raises for network or service errors:
        a model whose answer failed gets ``known=None``."""
        client = self._client.with_options(
            max_retries=min(self._max_retries, 1), timeout=min(self._timeout, _CHECK_TIMEOUT)
        )
        listed: dict[str, date | None] | None = None
        try:
            page = await client.models.list()
            listed = {}
            for item in page.data:
                listed[item.id] = _parse_date(getattr(item, "shutdown_date", None))
        except Exception as err:  # never fatal: the per-model reads below may still answer
            logger.warning("model list failed: %s", type(err).__name__)
        found: dict[str, ModelLookup] = {}
        for model in models:
            try:
                info = await client.models.retrieve(model)
            except openai.NotFoundError as err:
                logger.warning("model check: %s not found request_id=%s", model, err.request_id)
                found[model] = ModelLookup(known=False)
                continue
            except Exception as err:
                logger.warning("model check of %s failed: %s", model, type(err).__name__)
                known = None if listed is None else (True if model in listed else None)
                found[model] = ModelLookup(known=known, shutdown_date=(listed or {}).get(model))
                continue
            shutdown = _parse_date(getattr(info, "shutdown_date", None))
            if shutdown is None and listed is not None:
                shutdown = listed.get(model)
            found[model] = ModelLookup(known=True, shutdown_date=shutdown)
        return found

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._client.close()

    # --- request building -----------------------------------------------------------------

    def _fields(self, call: ModelCall, model: str, spec: ModelSpec) -> dict[str, Any]:
        """The form/JSON fields of generate or edit ("auto" defaults left out); the
        operator's ``moderation``, ``output_compression`` and ``input_fidelity`` only where
        the request and the model take them."""
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
        if not call.inputs and spec.moderation:
            # The edit endpoint's multipart form has no moderation field.
            fields["moderation"] = self._moderation
        if (
            self._output_compression is not None
            and spec.output_compression
            and options.output_format in ("jpeg", "webp")
        ):
            fields["output_compression"] = self._output_compression
        if call.inputs and self._input_fidelity is not None and spec.input_fidelity:
            fields["input_fidelity"] = self._input_fidelity
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
            names = [str(c) for c in categories if c] if isinstance(categories, list) else []
            stage = str(details.get("moderation_stage") or "input")
            log(logging.WARNING, f"safety refusal at {stage}")
            # OpenAI's own category names, shown as the provider gives them.
            return ContentRefused(reason=_clean(", ".join(names), 120), stage=stage)

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
            refused = _refused_option(error, status, param, code, call)
            message = self._rejection_message(error, status, param, code, call)
            if refused is not None:
                option, value = refused
                logger.warning(
                    "the image service refused %s=%s for model %s request_id=%s",
                    option,
                    value,
                    call.options.model or self._model,
                    request_id,
                )
                return OptionRefused(
                    message, model=call.options.model or self._model, option=option, value=value
                )
            return ProviderRejected(message)
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

_UNSUPPORTED = re.compile(
    r"not supported|unsupported|does not support|is not available for|unknown parameter",
    re.IGNORECASE,
)
_OPTION_FIELDS = {
    "size": "size",
    "quality": "quality",
    "background": "background",
    "output_format": "output_format",
    "input_fidelity": "input_fidelity",
    "moderation": "moderation",
    "output_compression": "output_compression",
}
_FLAG_FIELDS = {"input_fidelity", "moderation", "output_compression"}


def _refused_option(
    error: dict[str, Any], status: int, param: str | None, code: str | None, call: ModelCall
) -> tuple[str, str] | None:
    """``(option, value)`` when a 400 says the model does not take an option or a value
    ("... is not supported for this model", an unknown parameter, an invalid size); None
    for any other rejection (a bad prompt, a broken image, a value malformed for every model).
    """
    if status != 400 or not param or param not in _OPTION_FIELDS:
        return None
    message = error.get("message")
    text = message if isinstance(message, str) else ""
    if param in _FLAG_FIELDS:
        if code == "unknown_parameter" or _UNSUPPORTED.search(text):
            return param, "*"
        return None
    options = call.options
    sent = {
        "size": options.size,
        "quality": options.quality,
        "background": options.background,
        "output_format": options.output_format,
    }[param]
    if param == "background" and "requires output_format" in text:
        return None  # a combination the catalog already refuses, not a withdrawn value
    if code == "unknown_parameter":
        return param, "*"
    if _UNSUPPORTED.search(text) or (
        param == "size" and code == "invalid_value" and "Supported values are" in text
    ):
        if param == "size" and sent not in _fixed_sizes(call):
            return "size", "*"  # a free size refused: free sizes are withdrawn
        return param, sent
    return None


def _fixed_sizes(call: ModelCall) -> tuple[str, ...]:
    """The fixed sizes and ``auto`` (a size outside them is a free size)."""
    return (*spec_for(call.options.model).sizes, "auto")


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
            data = _b64decode(b64, validate=True)
        except (binascii.Error, ValueError):
            data = b""
    if not data:
        logger.warning(
            "image %s answer had empty or undecodable image data request_id=%s", kind, request_id
        )
        raise ProviderUnavailable()
    return data


def _plain_images(
    body: bytes, kind: str, request_id: str | None, requested_type: str
) -> list[ModelImage]:
    """Every image of a plain (``ImagesResponse``) answer, decoded.

    Raises ``ValueError`` for an answer that is not JSON, :class:`ProviderUnavailable`
    for one without images or with broken image data.
    """
    payload = _loads(body)
    if not isinstance(payload, dict):
        raise ValueError("the answer is not a JSON object")
    items = payload.get("data")
    if not isinstance(items, list) or not items:
        logger.warning("image %s answer held no images request_id=%s", kind, request_id)
        raise ProviderUnavailable()
    content_type = CONTENT_TYPES.get(str(payload.get("output_format") or ""), requested_type)
    images: list[ModelImage] = []
    for i, item in enumerate(items):
        b64 = item.get("b64_json") if isinstance(item, dict) else None
        images.append(ModelImage(data=_decode(b64, kind, request_id), content_type=content_type))
        items[i] = None  # let each base64 string go as soon as it is decoded
    return images


async def _stream_events(
    response: Any, kind: str, request_id: str | None, requested_type: str
) -> AsyncGenerator[ModelEvent, None]:
    """The previews and final images of a ``text/event-stream`` answer, in order.

    ``response`` is the SDK's streaming response (status already checked). An event
    carrying an ``error`` object raises ``openai.APIError`` with that object as its body,
    as the SDK's own stream does; a broken connection or a timeout while reading raises
    ``openai.APIConnectionError`` / ``openai.APITimeoutError``.
    """
    parser = SSEParser()
    partials = 0
    done = False
    try:
        async for chunk in _until_eof(response.iter_bytes()):
            if done:
                continue  # read to the end after [DONE], so the connection can be reused
            if chunk is None:
                parser.finish()
            else:
                parser.feed(chunk)
                del chunk
            while (sse := parser.next_event()) is not None:
                if sse.data.startswith(b"[DONE]"):
                    done = True
                    break
                event = _stream_event(sse, partials, kind, request_id, requested_type, response)
                del sse
                if event is None:
                    continue
                if isinstance(event, ModelPartial):
                    partials += 1
                yield event
                del event
    except _timeout_errors() as err:
        raise openai.APITimeoutError(request=response.http_request) from err
    except _network_errors() as err:
        raise openai.APIConnectionError(request=response.http_request) from err
    # An event cut off by the end of the stream (no blank line after it) is dropped, as
    # the SSE specification and the SDK do.


async def _until_eof(chunks: AsyncIterator[bytes]) -> AsyncGenerator[bytes | None, None]:
    """``chunks``, then ``None`` at the end of the stream."""
    async for chunk in chunks:
        yield chunk
    yield None


def _stream_event(
    sse: SSEEvent,
    partials: int,
    kind: str,
    request_id: str | None,
    requested_type: str,
    response: Any,
) -> ModelEvent | None:
    """One SSE event as a preview or a final image; ``None`` for any other event."""
    if not sse.data:
        return None
    payload = _loads(sse.data)
    if not isinstance(payload, dict):
        raise ValueError("a stream event is not a JSON object")
    event_type = str(payload.get("type") or sse.event)
    error = payload.get("error")
    if not error and (event_type == "error" or sse.event == "error"):
        error = payload  # an error event without an ``error`` object: the event is the error
    if error:
        message = error.get("message") if isinstance(error, dict) else None
        raise openai.APIError(
            message
            if isinstance(message, str) and message
            else "An error occurred during streaming",
            response.http_request,
            body=error,
        )
    content_type = CONTENT_TYPES.get(str(payload.get("output_format") or ""), requested_type)
    if event_type.endswith(".partial_image"):
        index = payload.get("partial_image_index")
        if not isinstance(index, int) or isinstance(index, bool):
            index = partials
        data = _decode(payload.get("b64_json"), kind, request_id)
        return ModelPartial(index=index, data=data, content_type=content_type)
    if event_type.endswith(".completed"):
        data = _decode(payload.get("b64_json"), kind, request_id)
        return ModelImage(data=data, content_type=content_type)
    return None


# --- server-sent events -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched server-sent event."""

    event: str
    """The ``event:`` field ("" when the event has none)."""
    data: bytes
    """The ``data:`` lines joined with ``\\n`` (undecoded bytes: JSON parsers take them)."""


_BOM = b"\xef\xbb\xbf"


class SSEParser:
    """An incremental ``text/event-stream`` parser that scans each byte once.

    :meth:`feed` the body's chunks as they arrive and take the complete events with
    :meth:`next_event` (one at a time, so only one event's data is copied out at once).
    Lines may end in ``\\n``, ``\\r\\n`` or ``\\r`` (also split across chunks); an event ends
    at a blank line. Fields are read as the SSE specification says: ``event`` and
    ``data`` (several ``data`` lines are joined with ``\\n``, one space after the colon is
    dropped); comments (``:``), ``id``, ``retry`` and unknown fields are ignored; an event
    without data is not dispatched.

    The SDK's own decoder splits lines with a regular expression over every byte of the
    stream and builds a ``str`` per line: ≈20 ms of CPU per 3 MB image. This one looks for
    the blank line with ``bytes.find`` in the new bytes only.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._start = 0  # where the next event begins in _buf
        self._pos = 0  # where to look for the next line end: every one before is known
        self._cr = False  # a chunk ended in "\r": it may be the first half of "\r\n"
        self._first = True

    def feed(self, chunk: bytes) -> None:
        """Add the next bytes of the stream."""
        if self._first and chunk:
            self._first = False
            if chunk.startswith(_BOM):
                chunk = chunk[len(_BOM) :]
        if self._cr:
            chunk = b"\r" + chunk
            self._cr = False
        if b"\r" in chunk:
            if chunk.endswith(b"\r"):
                chunk = chunk[:-1]
                self._cr = True
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        self._buf += chunk

    def finish(self) -> None:
        """The stream has ended: a ``\\r`` held back ends its line (an event that is still
        unfinished after that is never dispatched)."""
        if self._cr:
            self._cr = False
            self._buf += b"\n"

    def next_event(self) -> SSEEvent | None:
        """The next complete event, or ``None`` until more bytes are fed."""
        while True:
            buf = self._buf
            # One-byte find is a memchr (GB/s); a two-byte one walks byte by byte.
            eol = buf.find(b"\n", self._pos)
            if eol < 0 or eol + 1 == len(buf):  # no line end yet, or the byte after unknown
                self._pos = len(buf) if eol < 0 else eol
                return None
            if buf[eol + 1] != 0x0A:  # the end of a line, not a blank line
                self._pos = eol + 1
                continue
            start, self._start = self._start, eol + 2
            self._pos = self._start
            event = _parse_event(buf, start, eol)
            self._compact()
            if event is not None:
                return event

    def _compact(self) -> None:
        """Drop the bytes of events already returned (and free their memory)."""
        start = self._start
        buf = self._buf
        if start * 2 >= len(buf):  # copying the rest costs less than what it frees
            self._buf = buf[start:]
        else:
            del buf[:start]  # cheap: CPython moves the start of a bytearray
        self._pos -= start
        self._start = 0


def _parse_event(buf: bytearray, start: int, end: int) -> SSEEvent | None:
    """The event in the lines ``buf[start:end]`` (``\\n``-separated, no blank line)."""
    event = ""
    data: list[tuple[int, int]] = []
    pos = start
    while pos < end:
        eol = buf.find(b"\n", pos, end)
        if eol < 0:
            eol = end
        if buf[pos] != 0x3A:  # a line starting with ":" is a comment
            colon = buf.find(b":", pos, eol)
            if colon < 0:
                name, value = bytes(buf[pos:eol]), eol
            else:
                name, value = bytes(buf[pos:colon]), colon + 1
                if value < eol and buf[value] == 0x20:
                    value += 1
            if name == b"data":
                data.append((value, eol))
            elif name == b"event":
                event = buf[value:eol].decode("utf-8", "replace")
        pos = eol + 1
    if not data:
        return None
    with memoryview(buf) as view:
        joined = (
            b"\n".join([view[a:b] for a, b in data])
            if len(data) > 1
            else bytes(view[slice(*data[0])])
        )
    return SSEEvent(event=event, data=joined)


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
