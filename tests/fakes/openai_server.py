"""A loopback fake of OpenAI's image API, speaking the real wire format.

Point the real ``openai`` SDK at it and test against real HTTP::

    fake = FakeOpenAI()
    await fake.start()
    client = openai.AsyncOpenAI(api_key="sk-test", base_url=fake.base_url)
    ...
    await fake.stop()

What it serves (everything under ``/v1``):

- ``GET /models`` and ``GET /models/{model}``: the models in ``known_models``
  (``shutdown_dates`` adds a ``shutdown_date``); 404 ``model_not_found`` otherwise.
- ``POST /images/generations`` (JSON) and ``POST /images/edits`` (multipart, ``image`` or
  repeated ``image[]`` parts, optional ``mask``): validated like the real API (400
  ``invalid_request_error`` with ``param`` set), then an ``ImagesResponse`` with base64
  images of the requested size and format, or with ``stream=true`` a ``text/event-stream``
  of ``image_generation.*`` / ``image_edit.*`` events.
- ``POST /moderations``: flags text containing one of ``flag_words`` (and, when
  ``flag_image_category`` is set, every image part).

Every request is recorded in :attr:`FakeOpenAI.requests` (raw body included, so tests can
assert that something is absent). Failures are scripted with :meth:`FakeOpenAI.fail_next`,
:meth:`FakeOpenAI.refuse_next`, :meth:`FakeOpenAI.stream_error_next` and
:meth:`FakeOpenAI.fail_moderation_next`. Every response carries an ``x-request-id``.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import io
import json
import math
import random
import re
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

from aiohttp import web
from PIL import Image, ImageChops

__all__ = [
    "FakeOpenAI",
    "RecordedRequest",
    "realistic_factory",
    "realistic_png",
    "small_image",
]

ImageFactory = Callable[[int, int, str], bytes]
"""``factory(width, height, fmt) -> bytes`` with ``fmt`` one of png, jpeg, webp."""

DEFAULT_MODELS = ("gpt-image-2", "gpt-image-1.5", "gpt-image-1-mini", "omni-moderation-latest")
FIXED_SIZES = ("1024x1024", "1536x1024", "1024x1536")
FREE_SIZE_MODELS = frozenset({"gpt-image-2"})
"""Models that accept any ``WxH`` within the limits below."""
MIN_FREE_PIXELS = 655_360
MAX_FREE_PIXELS = 8_294_400
MAX_FREE_EDGE = 3840
MAX_PROMPT_CHARS = 32_000
MAX_EDIT_IMAGES = 16
MAX_IMAGE_BYTES = 50 * 1024 * 1024
MAX_MASK_BYTES = 4 * 1024 * 1024
QUALITIES = ("low", "medium", "high", "auto")
BACKGROUNDS = ("transparent", "opaque", "auto")
FORMATS = ("png", "jpeg", "webp")
CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}

MODERATION_CATEGORIES = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/intent",
    "self-harm/instructions",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)
IMAGE_MODERATION_CATEGORIES = frozenset(
    {
        "self-harm",
        "self-harm/intent",
        "self-harm/instructions",
        "sexual",
        "violence",
        "violence/graphic",
    }
)

_GENERATION_FIELDS = frozenset(
    {
        "prompt",
        "model",
        "n",
        "size",
        "quality",
        "background",
        "output_format",
        "output_compression",
        "moderation",
        "stream",
        "partial_images",
        "user",
        "safety_identifier",
        "response_format",
        "style",
    }
)
_EDIT_FIELDS = _GENERATION_FIELDS - {"moderation", "style"} | {
    "image",
    "image[]",
    "mask",
    "input_fidelity",
}

_MODERATION_FIELDS = frozenset({"input", "model"})

_OUTPUT_TOKENS = {
    # quality -> (square, portrait, landscape), output image tokens before gpt-image-2
    "low": (272, 408, 400),
    "medium": (1056, 1584, 1568),
    "high": (4160, 6240, 6208),
}

_DEFAULT_MESSAGES = {
    400: "Invalid request.",
    401: "Incorrect API key provided. You can find your API key at "
    "https://platform.openai.com/account/api-keys.",
    403: "Your organization must be verified to use the model. Please go to "
    "https://platform.openai.com/settings/organization/general and click on Verify "
    "Organization.",
    404: "The requested resource was not found.",
    409: "The request conflicted with another request.",
    429: "Rate limit reached for images per minute. Please try again in 1s.",
    500: "The server had an error while processing your request. Sorry about that!",
    502: "Bad gateway.",
    503: "The engine is currently overloaded, please try again later.",
}


# --- images -----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def small_image(width: int, height: int, fmt: str = "png") -> bytes:
    """The default image factory: 64x64 noise scaled up to ``width`` x ``height``.

    Real image files of the requested size, but small and fast to make (cached).
    """
    rnd = random.Random(width * 100_003 + height)  # deterministic per size
    base = Image.frombytes("RGB", (64, 64), rnd.randbytes(64 * 64 * 3))
    return _encode(base.resize((width, height), Image.Resampling.NEAREST), fmt, fast=True)


@functools.lru_cache(maxsize=8)
def realistic_png(width: int = 1024, height: int = 1024) -> bytes:
    """A noisy (not flat) PNG about as large as a real model output: ~2.2 MB at 1024x1024.

    Meant as an ``image_bytes_factory`` for benchmarks that move realistic byte counts;
    cached, so only the first call costs (~0.2 s).
    """
    rnd = random.Random(20_260_101)
    levels = bytes(i * 32 // 256 for i in range(256))  # 5 bits of noise per channel
    noise = Image.frombytes(
        "RGB", (width, height), rnd.randbytes(width * height * 3).translate(levels)
    )
    horizontal = Image.linear_gradient("L").resize((width, height))
    vertical = Image.linear_gradient("L").rotate(90).resize((width, height))
    flat = Image.new("L", (width, height), 90)
    gradient = Image.merge("RGB", [horizontal, vertical, flat])
    return _encode(ImageChops.add(noise, gradient), "png", fast=False)


def realistic_factory(width: int, height: int, fmt: str) -> bytes:
    """An ``image_bytes_factory`` that returns :func:`realistic_png` (re-encoded if not png)."""
    data = realistic_png(width, height)
    if fmt == "png":
        return data
    with Image.open(io.BytesIO(data)) as img:
        return _encode(img.convert("RGB"), fmt, fast=False)


def _encode(img: Image.Image, fmt: str, *, fast: bool) -> bytes:
    out = io.BytesIO()
    if fmt == "jpeg":
        img.convert("RGB").save(out, "JPEG", quality=85)
    elif fmt == "webp":
        img.save(out, "WEBP", quality=80, method=0 if fast else 4)
    else:
        img.save(out, "PNG", compress_level=1 if fast else 6)
    return out.getvalue()


def _sniff(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    return None


def _dimensions(data: bytes) -> tuple[int, int] | None:
    try:
        with Image.open(io.BytesIO(data)) as img:  # reads the header only
            return img.size
    except Exception:
        return None


_REQUEST_ID = web.RequestKey("openai_fake_request_id", str)


# --- recording --------------------------------------------------------------------------------


@dataclass
class RecordedRequest:
    """One request as the fake saw it."""

    method: str
    path: str
    """Full path, e.g. ``/v1/images/generations``."""
    headers: dict[str, str]
    body: bytes
    """The raw request body (handy to assert that something is *not* sent)."""
    json: dict[str, Any] | None = None
    """The parsed body of a JSON request."""
    form: dict[str, list[str]] = field(default_factory=dict)
    """Text fields of a multipart request, by name (repeated names keep every value)."""
    files: list[tuple[str, str, str, bytes]] = field(default_factory=list)
    """File parts of a multipart request: ``(field_name, filename, content_type, bytes)``."""
    request_id: str = ""
    """The ``x-request-id`` the fake answered with."""
    status: int = 0
    """The status the fake answered with (0 while still answering)."""

    def get(self, name: str) -> str | None:
        """A top-level field of the body as text (JSON value or the first form value)."""
        if self.json is not None:
            value = self.json.get(name)
            if value is None:
                return None
            return value if isinstance(value, str) else json.dumps(value)
        values = self.form.get(name)
        return values[0] if values else None

    def files_named(self, *names: str) -> list[tuple[str, str, str, bytes]]:
        """File parts whose field name is one of ``names``."""
        return [f for f in self.files if f[0] in names]


_RECORDED = web.RequestKey("openai_fake_recorded", RecordedRequest)
_STREAMING = web.RequestKey("openai_fake_streaming", bool)


@dataclass
class _Failure:
    status: int
    error: dict[str, Any]
    headers: dict[str, str]


class _Rejected(Exception):
    """Internal: answer with a 400 invalid_request_error."""

    def __init__(self, message: str, param: str | None, code: str | None = "invalid_value") -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


# --- the server -------------------------------------------------------------------------------


class FakeOpenAI:
    """A loopback OpenAI images (+ models, moderations) server. See the module docstring.

    Public knobs (plain attributes, change them any time):

    - ``latency``: seconds slept before answering each image request (default 0).
    - ``stream_interval``: seconds slept between streamed events (default 0).
    - ``known_models``: model ids that exist.
    - ``shutdown_dates``: ``{model: "YYYY-MM-DD"}`` reported by ``GET /v1/models/{model}``.
    - ``accepted_keys``: if not None, only these bearer keys are accepted (else any key).
    - ``flag_words`` / ``flag_category``: moderation flags text containing a word (any case).
    - ``flag_image_category``: when set, moderation flags every image part with it.

    Read-only results: ``requests`` (every request, in order), ``image_requests``,
    ``moderation_requests``, and ``errors``: exceptions raised inside the fake itself
    (answered with 500 and ``x-should-retry: false`` so the SDK does not hide them by
    retrying); a test can assert it is empty.
    """

    def __init__(
        self,
        *,
        known_models: Iterable[str] = DEFAULT_MODELS,
        image_bytes_factory: ImageFactory | None = None,
    ) -> None:
        self.known_models: set[str] = set(known_models)
        self.image_bytes_factory: ImageFactory = image_bytes_factory or small_image
        self.shutdown_dates: dict[str, str] = {}
        self.accepted_keys: set[str] | None = None
        self.latency: float = 0.0
        self.stream_interval: float = 0.0
        self.flag_words: set[str] = {"forbidden-word"}
        self.flag_category: str = "harassment"
        self.flag_image_category: str | None = None
        self.requests: list[RecordedRequest] = []
        self.errors: list[BaseException] = []
        self._failures: deque[_Failure] = deque()
        self._stream_errors: deque[dict[str, Any]] = deque()
        self._moderation_failures: deque[_Failure] = deque()
        self._refused_options: dict[str, list[tuple[str, str | None, dict[str, Any]]]] = {}
        self._runner: web.AppRunner | None = None
        self.base_url: str = ""
        self.port: int = 0
        self.latency_jitter: float = 0.0
        self._bucket: _ImageBucket | None = None
        self.rate_limited: int = 0
        """How many image requests the rate limit (:meth:`rate_limit`) answered with 429."""
        self.accepted_at: list[float] = []
        """``time.monotonic()`` of every image request the rate limit let through."""

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind 127.0.0.1 on a free port; sets :attr:`base_url` (ends in ``/v1``)."""
        app = web.Application(client_max_size=1024**3, middlewares=[self._middleware])
        app.router.add_get("/v1/models", self._list_models)
        app.router.add_get("/v1/models/{model:.+}", self._get_model)
        app.router.add_post("/v1/images/generations", self._generations)
        app.router.add_post("/v1/images/edits", self._edits)
        app.router.add_post("/v1/moderations", self._moderations)
        # Cancel a handler when its client hangs up (timeouts, abandoned streams), and do
        # not wait long for in-flight requests on stop.
        self._runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"

    async def stop(self) -> None:
        """Close the server and every open connection."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeOpenAI:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- scripting ----------------------------------------------------------------------------

    @property
    def image_requests(self) -> list[RecordedRequest]:
        """Only the ``/v1/images/*`` requests, in order."""
        return [r for r in self.requests if r.path.startswith("/v1/images/")]

    @property
    def moderation_requests(self) -> list[RecordedRequest]:
        """Only the ``/v1/moderations`` requests, in order."""
        return [r for r in self.requests if r.path == "/v1/moderations"]

    def reset(self) -> None:
        """Forget recorded requests and every scripted failure."""
        self.requests.clear()
        self._failures.clear()
        self._stream_errors.clear()
        self._moderation_failures.clear()

    def rate_limit(self, images: int, *, window: float = 60.0, model: str = "gpt-image-2") -> None:
        """Enforce an images-per-window limit (OpenAI's IPM, a token bucket of ``images``
        that refills evenly over ``window`` seconds) on image requests, before their
        ``latency``. Every image answer then carries the real ``x-ratelimit-*-requests``
        headers of that bucket; a request above it gets OpenAI's 429 ``rate_limit_exceeded``
        body with ``retry-after`` / ``retry-after-ms`` (the time until enough images are
        back). ``window`` < 60 compresses time for benchmarks. ``rate_limit(0)`` removes it.
        """
        self._bucket = _ImageBucket(images, window, model) if images > 0 else None

    def fail_next(
        self,
        status: int,
        *,
        code: str | None = None,
        type: str = "server_error",
        message: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        times: int = 1,
        extra_error: dict[str, Any] | None = None,
    ) -> None:
        """Answer the next ``times`` image requests with ``status`` and an OpenAI error body.

        ``message`` defaults to a realistic text for the status. ``extra_error`` is merged
        into the ``error`` object. A 429 carries ``retry-after: 1`` unless ``headers`` sets
        ``retry-after`` or ``retry-after-ms`` (pass ``{"retry-after-ms": "50"}`` to stay fast;
        for 5xx the SDK backs off 0.5 s, 1 s, ... unless you pass one too).
        """
        error: dict[str, Any] = {
            "message": message or _DEFAULT_MESSAGES.get(status, f"Error {status}."),
            "type": type,
            "param": param,
            "code": code,
        }
        error.update(extra_error or {})
        hdrs = dict(headers or {})
        lower = {k.lower() for k in hdrs}
        if status == 429 and not lower & {"retry-after", "retry-after-ms"}:
            hdrs["retry-after"] = "1"
        for _ in range(times):
            self._failures.append(_Failure(status, error, hdrs))

    def refuse_next(
        self,
        categories: Iterable[str] = ("harassment",),
        stage: str = "input",
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` image requests with a safety refusal (400
        ``moderation_blocked`` with ``moderation_details``)."""
        self.fail_next(
            400,
            code="moderation_blocked",
            type="image_generation_user_error",
            message="Your request was rejected by the safety system. If you believe this is "
            "an error, contact us at help.openai.com and include the request ID.",
            times=times,
            extra_error={
                "moderation_details": {"moderation_stage": stage, "categories": list(categories)}
            },
        )

    def stream_error_next(
        self,
        *,
        code: str | None = "server_error",
        type: str = "server_error",
        message: str = "The server had an error while processing your request.",
        extra_error: dict[str, Any] | None = None,
    ) -> None:
        """Make the next *streaming* image request send one partial, then an ``error`` event.

        The HTTP status is 200 (the error arrives inside the stream, as with the real API);
        the SDK raises a plain ``openai.APIError`` whose ``code`` is ``code``.
        """
        error: dict[str, Any] = {"type": type, "code": code, "message": message, "param": None}
        error.update(extra_error or {})
        self._stream_errors.append(error)

    def fail_moderation_next(
        self,
        status: int,
        *,
        times: int = 1,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next ``times`` moderation requests with ``status`` (outage tests)."""
        error = {
            "message": _DEFAULT_MESSAGES.get(status, f"Error {status}."),
            "type": "server_error" if status >= 500 else "invalid_request_error",
            "param": None,
            "code": code,
        }
        hdrs = dict(headers or {})
        if status == 429 and not {k.lower() for k in hdrs} & {"retry-after", "retry-after-ms"}:
            hdrs["retry-after"] = "1"
        for _ in range(times):
            self._moderation_failures.append(_Failure(status, error, hdrs))

    def set_models(self, models: dict[str, str | None]) -> None:
        """List exactly these image models (``{id: shutdown_date "YYYY-MM-DD" or None}``),
        plus the moderation model; a model left out answers 404 ``model_not_found``."""
        self.known_models = set(models) | {"omni-moderation-latest"}
        self.shutdown_dates = {m: d for m, d in models.items() if d}

    def refuse_option(
        self,
        model: str,
        param: str,
        value: str | None = None,
        *,
        message: str | None = None,
        type: str | None = None,
        code: str | None = None,
    ) -> None:
        """Make ``model`` refuse ``param`` (any value when ``value`` is None, else only that
        value) on every image request from now on, with OpenAI's error body (400).

        Defaults follow the real service: ``background="transparent"`` gets
        ``Transparent background is not supported for this model.``
        (``image_generation_user_error`` / ``invalid_value``); another value gets
        ``Unsupported value: '<param>' does not support '<value>' with this model.``
        (``unsupported_value``); a whole field gets ``Unsupported parameter: '<param>' is
        not supported with this model.`` (``unsupported_parameter``).
        """
        if param == "background" and value == "transparent":
            error = {
                "message": "Transparent background is not supported for this model.",
                "type": "image_generation_user_error",
                "param": param,
                "code": "invalid_value",
            }
        elif value is not None:
            error = {
                "message": f"Unsupported value: '{param}' does not support '{value}' with "
                "this model.",
                "type": "invalid_request_error",
                "param": param,
                "code": "unsupported_value",
            }
        else:
            error = {
                "message": f"Unsupported parameter: '{param}' is not supported with this model.",
                "type": "invalid_request_error",
                "param": param,
                "code": "unsupported_parameter",
            }
        if message is not None:
            error["message"] = message
        if type is not None:
            error["type"] = type
        if code is not None:
            error["code"] = code
        self._refused_options.setdefault(model, []).append((param, value, error))

    def _refusal(self, model: str, params: dict[str, Any]) -> dict[str, Any] | None:
        """The error body of the first refused option this request carries, if any."""
        for param, value, error in self._refused_options.get(model, ()):
            if param in params and (value is None or str(params[param]) == value):
                return error
        return None

    # --- plumbing -----------------------------------------------------------------------------

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        request_id = "req_" + uuid.uuid4().hex
        request[_REQUEST_ID] = request_id
        body = await request.read()
        recorded = RecordedRequest(
            method=request.method,
            path=request.path,
            headers={k: v for k, v in request.headers.items()},
            body=body,
            request_id=request_id,
        )
        if request.content_type == "application/json" and body:
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
            recorded.json = parsed if isinstance(parsed, dict) else None
        elif request.content_type == "multipart/form-data":
            boundary = _boundary(request.headers.get("Content-Type", ""))
            if boundary:
                recorded.form, recorded.files = _parse_multipart(body, boundary)
        self.requests.append(recorded)
        request[_RECORDED] = recorded
        try:
            auth = request.headers.get("Authorization", "")
            key = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else ""
            if not key or (self.accepted_keys is not None and key not in self.accepted_keys):
                response: web.StreamResponse = _error_response(
                    401,
                    {
                        "message": _DEFAULT_MESSAGES[401]
                        if key
                        else "You didn't provide an API key.",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": "invalid_api_key" if key else None,
                    },
                )
            else:
                response = await handler(request)
        except web.HTTPNotFound:
            response = _error_response(
                404,
                {
                    "message": f"Invalid URL ({request.method} {request.path})",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": None,
                },
            )
        except web.HTTPMethodNotAllowed:
            response = _error_response(
                405,
                {
                    "message": f"Invalid method for URL ({request.method} {request.path})",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": None,
                },
            )
        except ConnectionError:  # the client went away mid-stream: normal, not a fake bug
            recorded.status = 200
            raise
        except Exception as exc:  # a bug in the fake: make it loud, and not retried
            self.errors.append(exc)
            response = _error_response(
                500,
                {
                    "message": f"The fake crashed: {type(exc).__name__}: {exc}",
                    "type": "server_error",
                    "param": None,
                    "code": "fake_crashed",
                },
                {"x-should-retry": "false"},
            )
            if request.get(_STREAMING):
                raise
        if not response.prepared:
            response.headers["x-request-id"] = request_id
        recorded.status = response.status
        return response

    # --- models -------------------------------------------------------------------------------

    def _model_object(self, model: str) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "id": model,
            "object": "model",
            "created": 1_745_000_000,
            "owned_by": "system",
        }
        if model in self.shutdown_dates:
            obj["shutdown_date"] = self.shutdown_dates[model]
        return obj

    async def _list_models(self, request: web.Request) -> web.StreamResponse:
        data = [self._model_object(m) for m in sorted(self.known_models)]
        return web.json_response({"object": "list", "data": data})

    async def _get_model(self, request: web.Request) -> web.StreamResponse:
        model = request.match_info["model"]
        if model not in self.known_models:
            return _error_response(
                404,
                {
                    "message": f"The model '{model}' does not exist or you do not have access "
                    "to it.",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "model_not_found",
                },
            )
        return web.json_response(self._model_object(model))

    # --- images -------------------------------------------------------------------------------

    async def _generations(self, request: web.Request) -> web.StreamResponse:
        recorded: RecordedRequest = request[_RECORDED]
        if recorded.json is None:
            return _invalid(
                "We could not parse the JSON body of your request. The OpenAI API expects a "
                "JSON payload.",
                None,
                None,
            )
        return await self._images(request, dict(recorded.json), edit=False)

    async def _edits(self, request: web.Request) -> web.StreamResponse:
        recorded: RecordedRequest = request[_RECORDED]
        if not request.content_type.startswith("multipart/"):
            return _invalid(
                "This fake only takes the multipart form of /v1/images/edits.", None, None
            )
        params: dict[str, Any] = {k: v[-1] for k, v in recorded.form.items()}
        for name, _filename, _ctype, _data in recorded.files:
            params.setdefault(name, True)  # present, for the unknown-parameter check
        return await self._images(request, params, edit=True)

    async def _images(
        self, request: web.Request, params: dict[str, Any], *, edit: bool
    ) -> web.StreamResponse:
        limit_headers: dict[str, str] | None = None
        if self._bucket is not None:
            n = params.get("n", 1)
            wanted = n if isinstance(n, int) and 1 <= n <= 10 else 1
            limited, limit_headers = self._bucket.take(wanted)
            if limited is not None:
                self.rate_limited += 1
                return limited
            self.accepted_at.append(time.monotonic())
        delay = self.latency
        if self.latency_jitter:
            delay += random.uniform(-self.latency_jitter, self.latency_jitter)
        if delay > 0:
            await asyncio.sleep(delay)
        if self._failures:
            failure = self._failures.popleft()
            return _error_response(failure.status, failure.error, failure.headers)
        try:
            job = self._validate(params, request[_RECORDED], edit=edit)
        except _Rejected as rej:
            return _invalid(rej.message, rej.param, rej.code)
        refused = self._refusal(job["model"], params)
        if refused is not None:
            return _error_response(400, dict(refused))
        if job["stream"]:
            return await self._stream(request, job, edit=edit, limit_headers=limit_headers)
        images = [self.image_bytes_factory(job["width"], job["height"], job["format"])]
        images *= job["n"]
        body = {
            "created": int(time.time()),
            "background": job["background"],
            "output_format": job["format"],
            "quality": job["quality"],
            "size": job["size"],
            "data": [{"b64_json": base64.b64encode(img).decode()} for img in images],
            "usage": _usage(job, partials=0, output_details=True),
        }
        if job["safety_identifier"]:
            body["safety_identifier"] = job["safety_identifier"]
        return web.json_response(body, headers=limit_headers or _ratelimit_headers())

    async def _stream(
        self,
        request: web.Request,
        job: dict[str, Any],
        *,
        edit: bool,
        limit_headers: dict[str, str] | None = None,
    ) -> web.StreamResponse:
        prefix = "image_edit" if edit else "image_generation"
        response = web.StreamResponse(
            status=200,
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                "x-request-id": request[_REQUEST_ID],
                **(limit_headers or _ratelimit_headers()),
            },
        )
        request[_STREAMING] = True
        await response.prepare(request)
        common = {
            "background": job["background"],
            "output_format": job["format"],
            "quality": job["quality"],
            "size": job["size"],
        }
        image = self.image_bytes_factory(job["width"], job["height"], job["format"])
        b64 = base64.b64encode(image).decode()
        error = self._stream_errors.popleft() if self._stream_errors else None
        partials = max(job["partial_images"], 1) if error else job["partial_images"]
        for index in range(partials):
            await self._send_event(
                response,
                f"{prefix}.partial_image",
                {
                    "type": f"{prefix}.partial_image",
                    "b64_json": b64,
                    "partial_image_index": index,
                    "created_at": int(time.time()),
                    **common,
                },
            )
            if error:
                await self._send_event(response, "error", {"type": "error", "error": error})
                await response.write_eof()
                return response
        completed: dict[str, Any] = {
            "type": f"{prefix}.completed",
            "b64_json": b64,
            "created_at": int(time.time()),
            **common,
            "usage": _usage(job, partials=partials, output_details=False),
        }
        if job["safety_identifier"]:
            completed["safety_identifier"] = job["safety_identifier"]
        await self._send_event(response, f"{prefix}.completed", completed)
        await response.write_eof()
        return response

    async def _send_event(self, response: web.StreamResponse, event: str, data: object) -> None:
        if self.stream_interval:
            await asyncio.sleep(self.stream_interval)
        await response.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())

    def _validate(
        self, params: dict[str, Any], recorded: RecordedRequest, *, edit: bool
    ) -> dict[str, Any]:
        """Check the request like the real API; return what to answer with."""
        allowed = _EDIT_FIELDS if edit else _GENERATION_FIELDS
        for name in params:
            if name not in allowed:
                raise _Rejected(f"Unknown parameter: '{name}'.", name, "unknown_parameter")

        model = params.get("model") or ("gpt-image-1.5" if edit else "dall-e-2")
        if not isinstance(model, str) or model not in self.known_models or "moderation" in model:
            raise _Rejected(
                f"Invalid value: '{model}'. The model does not exist or does not support "
                "this endpoint.",
                "model",
            )

        prompt = params.get("prompt")
        if prompt is None or prompt == "":
            raise _Rejected(
                "Missing required parameter: 'prompt'.", "prompt", "missing_required_parameter"
            )
        if not isinstance(prompt, str):
            raise _Rejected(
                "Invalid type for 'prompt': expected a string.", "prompt", "invalid_type"
            )
        if len(prompt) > MAX_PROMPT_CHARS:
            raise _Rejected(
                f"Invalid 'prompt': string too long. Expected a string with maximum length "
                f"{MAX_PROMPT_CHARS}, but got a string with length {len(prompt)} instead.",
                "prompt",
                "string_above_max_length",
            )

        n = _as_int(params.get("n", 1), "n")
        if not 1 <= n <= 10:
            raise _Rejected(
                f"Invalid 'n': integer {'below minimum' if n < 1 else 'above maximum'} value. "
                f"Expected a value {'>= 1' if n < 1 else '<= 10'}, but got {n} instead.",
                "n",
                "integer_below_min_value" if n < 1 else "integer_above_max_value",
            )

        size = str(params.get("size") or "auto")
        width, height = self._check_size(size, model)

        quality = str(params.get("quality") or "auto")
        if quality not in QUALITIES:
            raise _Rejected(
                f"Invalid value: '{quality}'. Supported values are: 'low', 'medium', 'high', "
                "and 'auto'.",
                "quality",
            )
        fmt = str(params.get("output_format") or "png")
        if fmt not in FORMATS:
            raise _Rejected(
                f"Invalid value: '{fmt}'. Supported values are: 'png', 'jpeg', and 'webp'.",
                "output_format",
            )
        background = str(params.get("background") or "auto")
        if background not in BACKGROUNDS:
            raise _Rejected(
                f"Invalid value: '{background}'. Supported values are: 'transparent', "
                "'opaque', and 'auto'.",
                "background",
            )
        if background == "transparent" and fmt not in ("png", "webp"):
            raise _Rejected(
                "Transparent background requires output_format to be 'png' or 'webp'.",
                "background",
            )
        if "output_compression" in params:
            compression = _as_int(params["output_compression"], "output_compression")
            if not 0 <= compression <= 100:
                raise _Rejected(
                    "Invalid 'output_compression': expected a value between 0 and 100.",
                    "output_compression",
                )
        if params.get("response_format") not in (None, "b64_json"):
            raise _Rejected(
                "Unknown parameter: 'response_format'. The GPT image models always return "
                "base64-encoded images.",
                "response_format",
                "unknown_parameter",
            )
        if not edit and params.get("moderation") not in (None, "low", "auto"):
            raise _Rejected(
                f"Invalid value: '{params['moderation']}'. Supported values are: 'low' and 'auto'.",
                "moderation",
            )

        stream = _as_bool(params.get("stream", False), "stream")
        partial_images = _as_int(params.get("partial_images", 0), "partial_images")
        if not model.startswith("gpt-image"):
            # Only the GPT image models stream (EXTERNAL_APIS.md 1.2): the dall-e models
            # refuse the parameters, in the API's words for a model that lacks one.
            for name in ("stream", "partial_images"):
                if name in params:
                    raise _Rejected(
                        f"Unsupported parameter: '{name}' is not supported with this model.",
                        name,
                        "unsupported_parameter",
                    )
        if not 0 <= partial_images <= 3:
            raise _Rejected(
                "Invalid 'partial_images': expected a value between 0 and 3.", "partial_images"
            )
        if stream and n > 1:
            raise _Rejected(
                "Streaming is only supported with n=1 (this fake's reading of the API).", "n"
            )

        images = 0
        if edit:
            images = self._check_edit_files(params, recorded, model)

        for name in ("user", "safety_identifier"):
            value = params.get(name)
            if value is not None and not isinstance(value, str):
                raise _Rejected(
                    f"Invalid type for '{name}': expected a string.", name, "invalid_type"
                )
        safety_identifier = params.get("safety_identifier") or params.get("user") or None
        return {
            "model": model,
            "prompt": prompt,
            "n": n,
            "size": f"{width}x{height}",
            "width": width,
            "height": height,
            "quality": "medium" if quality == "auto" else quality,
            "format": fmt,
            "background": "opaque" if background == "auto" else background,
            "stream": stream,
            "partial_images": partial_images,
            "input_images": images,
            "safety_identifier": safety_identifier,
        }

    def _check_size(self, size: str, model: str) -> tuple[int, int]:
        if size == "auto":
            return 1024, 1024
        if size in FIXED_SIZES:
            fixed_w, _, fixed_h = size.partition("x")
            return int(fixed_w), int(fixed_h)
        match = re.fullmatch(r"(\d{1,5})x(\d{1,5})", size)
        supported = "'1024x1024', '1024x1536', '1536x1024', and 'auto'"
        if model not in FREE_SIZE_MODELS or match is None:
            raise _Rejected(
                f"Invalid value: '{size[:40]}'. Supported values are: {supported}.", "size"
            )
        w, h = int(match.group(1)), int(match.group(2))
        problem = None
        if w % 16 or h % 16:
            problem = "width and height must both be multiples of 16"
        elif max(w, h) > MAX_FREE_EDGE:
            problem = f"the longest edge must be at most {MAX_FREE_EDGE} pixels"
        elif max(w, h) > 3 * min(w, h):
            problem = "the aspect ratio must be between 1:3 and 3:1"
        elif not MIN_FREE_PIXELS <= w * h <= MAX_FREE_PIXELS:
            problem = (
                f"the total number of pixels must be between {MIN_FREE_PIXELS:,} and "
                f"{MAX_FREE_PIXELS:,}"
            )
        if problem:
            raise _Rejected(f"Invalid size '{size}': {problem}.", "size")
        return w, h

    def _check_edit_files(
        self, params: dict[str, Any], recorded: RecordedRequest, model: str
    ) -> int:
        images = recorded.files_named("image", "image[]")
        if not images:
            raise _Rejected(
                "Missing required parameter: 'image'.", "image", "missing_required_parameter"
            )
        if len(images) > MAX_EDIT_IMAGES:
            raise _Rejected(
                f"Invalid 'image': too many images. Expected at most {MAX_EDIT_IMAGES}, but got "
                f"{len(images)}.",
                "image",
                "array_above_max_length",
            )
        first_size: tuple[int, int] | None = None
        for i, (_name, filename, _ctype, data) in enumerate(images):
            kind = _sniff(data)
            if kind not in ("png", "jpeg", "webp"):
                raise _Rejected(
                    f"Invalid file '{filename}': unsupported mimetype. Supported file formats "
                    "are 'image/jpeg', 'image/png', and 'image/webp'.",
                    "image",
                    "invalid_image_format",
                )
            if len(data) >= MAX_IMAGE_BYTES:
                raise _Rejected(
                    f"Invalid file '{filename}': images must be smaller than 50 MB.",
                    "image",
                    "image_too_large",
                )
            if i == 0:
                first_size = _dimensions(data)
                if first_size is None:
                    raise _Rejected(
                        f"Invalid file '{filename}': the image could not be decoded.",
                        "image",
                        "invalid_image",
                    )
        masks = recorded.files_named("mask")
        if masks:
            _name, _filename, _ctype, mask = masks[0]
            if _sniff(mask) != "png":
                raise _Rejected(
                    "Invalid mask: the mask must be a PNG image.", "mask", "invalid_image_format"
                )
            if len(mask) >= MAX_MASK_BYTES:
                raise _Rejected(
                    "Invalid mask: the mask must be smaller than 4 MB.", "mask", "image_too_large"
                )
            if _dimensions(mask) != first_size:
                raise _Rejected(
                    "Invalid mask: the mask must have the same dimensions as the image.",
                    "mask",
                    "invalid_mask",
                )
        fidelity = params.get("input_fidelity")
        if fidelity is not None:
            if fidelity not in ("high", "low"):
                raise _Rejected(
                    f"Invalid value: '{fidelity}'. Supported values are: 'high' and 'low'.",
                    "input_fidelity",
                )
            if model == "gpt-image-2" or (model == "gpt-image-1-mini" and fidelity == "high"):
                raise _Rejected(
                    f"input_fidelity '{fidelity}' is not supported for {model}.", "input_fidelity"
                )
        return len(images)

    # --- moderations --------------------------------------------------------------------------

    async def _moderations(self, request: web.Request) -> web.StreamResponse:
        if self._moderation_failures:
            failure = self._moderation_failures.popleft()
            return _error_response(failure.status, failure.error, failure.headers)
        payload = request[_RECORDED].json
        if payload is None or "input" not in payload:
            return _invalid(
                "Missing required parameter: 'input'.", "input", "missing_required_parameter"
            )
        for name in payload:
            if name not in _MODERATION_FIELDS:
                return _invalid(f"Unknown parameter: '{name}'.", name, "unknown_parameter")
        raw = payload["input"]
        model = payload.get("model") or "omni-moderation-latest"
        if model not in self.known_models:
            return _invalid(f"Invalid value: '{model}'. The model does not exist.", "model")
        # A string or a list of strings gives one result each; a list of parts gives one.
        groups: list[list[dict[str, Any]]]
        if isinstance(raw, str):
            groups = [[{"type": "text", "text": raw}]]
        elif isinstance(raw, list) and all(isinstance(x, str) for x in raw):
            groups = [[{"type": "text", "text": x}] for x in raw]
        elif isinstance(raw, list) and all(isinstance(x, dict) for x in raw):
            groups = [raw]
        else:
            return _invalid("Invalid type for 'input'.", "input", "invalid_type")
        results = [self._moderate(parts) for parts in groups]
        return web.json_response(
            {"id": "modr-" + uuid.uuid4().hex[:24], "model": model, "results": results}
        )

    def _moderate(self, parts: list[dict[str, Any]]) -> dict[str, Any]:
        has_text = any(p.get("type") == "text" for p in parts)
        has_image = any(p.get("type") == "image_url" for p in parts)
        hits: dict[str, set[str]] = {}
        words = {w.lower() for w in self.flag_words}
        for part in parts:
            if part.get("type") == "text":
                text = str(part.get("text", "")).lower()
                if any(w in text for w in words):
                    hits.setdefault(self.flag_category, set()).add("text")
            elif part.get("type") == "image_url" and self.flag_image_category:
                hits.setdefault(self.flag_image_category, set()).add("image")
        categories: dict[str, bool | None] = {c: c in hits for c in MODERATION_CATEGORIES}
        scores = {c: (0.97 if c in hits else 0.0001) for c in MODERATION_CATEGORIES}
        applied: dict[str, list[str]] = {}
        for c in MODERATION_CATEGORIES:
            kinds = []
            if has_text:
                kinds.append("text")
            if has_image and c in IMAGE_MODERATION_CATEGORIES:
                kinds.append("image")
            applied[c] = kinds
        return {
            "flagged": bool(hits),
            "categories": categories,
            "category_scores": scores,
            "category_applied_input_types": applied,
        }


# --- helpers ----------------------------------------------------------------------------------


def _error_response(
    status: int, error: dict[str, Any], headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response({"error": error}, status=status, headers=headers or None)


def _invalid(message: str, param: str | None, code: str | None = "invalid_value") -> web.Response:
    return _error_response(
        400, {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    )


def _duration(seconds: float) -> str:
    """OpenAI's reset durations: ``240ms``, ``1s``, ``6m0s``, ``1h2m3s``."""
    if seconds < 1:
        return f"{max(0, round(seconds * 1000))}ms"
    whole = math.ceil(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


class _ImageBucket:
    """OpenAI's images-per-minute limit: a bucket of ``limit`` that refills evenly."""

    def __init__(self, limit: int, window: float, model: str) -> None:
        self.limit = limit
        self.window = window
        self.model = model
        self.tokens = float(limit)
        self.at = time.monotonic()

    def _refill(self) -> float:
        now = time.monotonic()
        rate = self.limit / self.window
        self.tokens = min(float(self.limit), self.tokens + (now - self.at) * rate)
        self.at = now
        return rate

    def take(self, n: int) -> tuple[web.Response | None, dict[str, str]]:
        rate = self._refill()
        if self.tokens >= n:
            self.tokens -= n
            return None, self.headers(rate)
        wait = (n - self.tokens) / rate
        used = self.limit - math.floor(self.tokens)
        error = {
            "message": (
                f"Rate limit reached for {self.model} in organization org-fake on images per "
                f"minute (IPM): Limit {self.limit}, Used {used}, Requested {n}. Please try "
                f"again in {_duration(wait)}. Visit https://platform.openai.com/account/"
                "rate-limits to learn more."
            ),
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        }
        headers = {
            **self.headers(rate),
            "retry-after": str(max(1, math.ceil(wait))),
            "retry-after-ms": str(max(1, math.ceil(wait * 1000))),
        }
        return _error_response(429, error, headers), headers

    def headers(self, rate: float) -> dict[str, str]:
        return {
            "x-ratelimit-limit-requests": str(self.limit),
            "x-ratelimit-remaining-requests": str(max(0, math.floor(self.tokens))),
            "x-ratelimit-reset-requests": _duration((self.limit - self.tokens) / rate),
        }


def _ratelimit_headers() -> dict[str, str]:
    return {
        "x-ratelimit-limit-requests": "250",
        "x-ratelimit-remaining-requests": "249",
        "x-ratelimit-reset-requests": "240ms",
    }


def _usage(job: dict[str, Any], *, partials: int, output_details: bool) -> dict[str, Any]:
    text_tokens = max(1, math.ceil(len(job["prompt"]) / 4))
    image_tokens = 65 * job["input_images"]
    square, portrait, landscape = _OUTPUT_TOKENS[job["quality"]]
    w, h = job["width"], job["height"]
    if (w, h) == (1024, 1024):
        per_image = square
    elif (w, h) == (1024, 1536):
        per_image = portrait
    elif (w, h) == (1536, 1024):
        per_image = landscape
    else:
        per_image = math.ceil(square * w * h / (1024 * 1024))
    output = per_image * job["n"] + 100 * partials
    usage: dict[str, Any] = {
        "input_tokens": text_tokens + image_tokens,
        "output_tokens": output,
        "total_tokens": text_tokens + image_tokens + output,
        "input_tokens_details": {"text_tokens": text_tokens, "image_tokens": image_tokens},
    }
    if output_details:
        usage["output_tokens_details"] = {"text_tokens": 0, "image_tokens": output}
    return usage


def _as_int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise _Rejected(f"Invalid type for '{name}': expected an integer.", name, "invalid_type")
    if isinstance(value, int):
        return value
    try:
        return int(str(value))
    except ValueError:
        raise _Rejected(
            f"Invalid type for '{name}': expected an integer, but got a string instead.",
            name,
            "invalid_type",
        ) from None


def _as_bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise _Rejected(f"Invalid type for '{name}': expected a boolean.", name, "invalid_type")


def _boundary(content_type: str) -> str | None:
    msg = Message()
    msg["content-type"] = content_type
    boundary = msg.get_param("boundary")
    return boundary if isinstance(boundary, str) else None


def _parse_multipart(
    body: bytes, boundary: str
) -> tuple[dict[str, list[str]], list[tuple[str, str, str, bytes]]]:
    """Split a multipart/form-data body into text fields and file parts (exact bytes)."""
    form: dict[str, list[str]] = {}
    files: list[tuple[str, str, str, bytes]] = []
    delimiter = b"\r\n--" + boundary.encode()
    chunks = (b"\r\n" + body).split(delimiter)
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break
        chunk = chunk.removeprefix(b"\r\n")
        head, sep, data = chunk.partition(b"\r\n\r\n")
        if not sep:
            continue
        headers = Message()
        for line in head.decode("utf-8", "replace").split("\r\n"):
            key, _, value = line.partition(":")
            if key:
                headers[key.strip()] = value.strip()
        name = headers.get_param("name", header="content-disposition")
        filename = headers.get_param("filename", header="content-disposition")
        if not isinstance(name, str):
            continue
        if isinstance(filename, str):
            ctype = headers.get("content-type", "application/octet-stream")
            files.append((name, filename, ctype, data))
        else:
            form.setdefault(name, []).append(data.decode("utf-8", "replace"))
    return form, files
