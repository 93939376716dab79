"""The HTTP transport to the Bot API: python-telegram-bot's request interface on aiohttp.

PTB's default transport (httpx) spends about 2–3 ms of CPU per call, much of it in
httpcore's connection pool, which re-checks every connection each time a request starts
or ends (and re-scans every queued request when many wait). aiohttp, already imagebot's
HTTP library, does the same calls for a fraction of that, which is what lets a burst of
commands be acknowledged quickly. Uploads and other calls wait on separate gates, so
photos on their way never hold up a status message.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

CALLS = 16
"""Calls without files in flight at once."""
UPLOADS = 4
"""Calls with files (photos, documents) in flight at once."""
NO_PARSE_MODE = frozenset({"editMessageMedia", "editMessageReplyMarkup"})
"""Methods that take no ``parse_mode``, to which PTB's ``Defaults(parse_mode=…)`` adds it
anyway (every edit goes through ``Bot._send_message``). Telegram ignores it silently; a
caption in ``editMessageMedia`` takes its parse mode inside the ``media`` object."""


class AiohttpRequest(BaseRequest):
    """:class:`telegram.request.BaseRequest` on an :class:`aiohttp.ClientSession`."""

    def __init__(
        self,
        *,
        calls: int = CALLS,
        uploads: int = UPLOADS,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        media_read_timeout: float = 120.0,
    ) -> None:
        self._calls = asyncio.Semaphore(calls)
        self._uploads = asyncio.Semaphore(uploads)
        self._limit = calls + uploads
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._media_read_timeout = media_read_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        """The default time to wait for an answer."""
        return self._read_timeout

    async def initialize(self) -> None:
        """Open the connection pool."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._limit, ttl_dns_cache=300),
                headers={"User-Agent": self.USER_AGENT},
            )

    async def shutdown(self) -> None:
        """Close the connection pool."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """One HTTP request: form-encoded, or multipart when it carries files."""
        if self._session is None:
            raise RuntimeError("AiohttpRequest is not initialized")
        files = request_data.multipart_data if request_data is not None else None
        fields = request_data.json_parameters if request_data is not None else None
        if fields and "parse_mode" in fields and url.rsplit("/", 1)[-1] in NO_PARSE_MODE:
            fields = {name: value for name, value in fields.items() if name != "parse_mode"}
        body: aiohttp.FormData | dict[str, str] | None = fields
        if files:
            form = aiohttp.FormData()
            for name, value in (fields or {}).items():
                form.add_field(name, value)
            for name, part in files.items():
                filename, content, content_type = part
                form.add_field(name, content, filename=filename, content_type=content_type)
            body = form
        default_read = self._media_read_timeout if files else self._read_timeout
        timeout = aiohttp.ClientTimeout(
            total=None,
            sock_connect=_value(connect_timeout, self._connect_timeout),
            sock_read=_value(read_timeout, default_read),
        )
        gate = self._uploads if files else self._calls
        async with gate:
            try:
                async with self._session.request(
                    method, url, data=body, timeout=timeout
                ) as response:
                    return response.status, await response.read()
            except TimeoutError as exc:
                raise TimedOut() from exc
            except aiohttp.ClientError as exc:
                raise NetworkError(f"aiohttp.{type(exc).__name__}") from exc


def _value(given: Any, default: float | None) -> float | None:
    if given is BaseRequest.DEFAULT_NONE:
        return default
    return None if given is None else float(given)
