"""The httpx-aiohttp transport with a shorter hot path for the small JSON answers APIs send.

Same behaviour as ``httpx_aiohttp.AiohttpTransport`` (whose connection pool, TLS and exception
mapping it reuses), but a response with a known ``Content-Length`` up to ``BUFFER_LIMIT`` is read
in one ``read()`` inside the transport instead of through an async chunk iterator (and, unless it
is content-encoded, handed to httpx as read), and timeouts objects are cached. Larger or chunked
bodies still stream.
"""

from __future__ import annotations

from typing import Any

import httpx
from aiohttp import ClientTimeout
from httpx_aiohttp import AiohttpTransport
from httpx_aiohttp.transport import AiohttpResponseStream, map_aiohttp_exceptions
from yarl import URL

#: Responses up to this size (with a Content-Length) are read in the transport.
BUFFER_LIMIT = 1 << 20
_HTTP11 = b"HTTP/1.1"


class HubTransport(AiohttpTransport):
    """``AiohttpTransport`` tuned for many small requests (see module docstring)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._timeouts: dict[tuple[Any, Any, Any], ClientTimeout] = {}

    def _timeout(self, t: dict[str, Any]) -> ClientTimeout:
        key = (t.get("connect"), t.get("read"), t.get("pool"))
        ct = self._timeouts.get(key)
        if ct is None:
            ct = self._timeouts[key] = ClientTimeout(sock_connect=key[0], sock_read=key[1], connect=key[2])
        return ct

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.proxy is not None or request.extensions.get("sni_hostname"):
            return await super().handle_async_request(request)
        session = self.client
        if session is None or callable(session):
            session = self.client = self.get_client()
        data: Any
        try:
            data = request.content or None
        except httpx.RequestNotRead:
            data = request.stream
            request.headers.pop("transfer-encoding", None)
        with map_aiohttp_exceptions():
            response = await session.request(
                method=request.method,
                url=URL(str(request.url), encoded=True),  # httpx has already normalised and quoted it
                headers=request.headers.multi_items(),  # a list: aiohttp would index an httpx.Headers per key
                data=data,
                allow_redirects=False,
                auto_decompress=False,
                compress=False,
                timeout=self._timeout(request.extensions.get("timeout", {})),
            ).__aenter__()
            extensions: dict[str, Any] = {"http_version": _HTTP11}
            if response.reason:
                extensions["reason_phrase"] = response.reason.encode()
            length = response.content_length
            if length is not None and length <= BUFFER_LIMIT:
                try:
                    content = await response.read()
                finally:
                    response.release()
                if response.headers.get("Content-Encoding", "identity") != "identity":  # httpx decodes it
                    return httpx.Response(
                        status_code=response.status,
                        headers=response.raw_headers,
                        content=content,
                        request=request,
                        extensions=extensions,
                    )
                return _read(response.status, response.raw_headers, content, request, extensions)
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=AiohttpResponseStream(response),
            request=request,
            extensions=extensions,
        )


def _read(
    status: int, headers: Any, content: bytes, request: httpx.Request, extensions: dict[str, Any]
) -> httpx.Response:
    """A response whose body is already read (and not encoded): what ``httpx.Response(content=...)``
    gives, without passing the bytes through its stream, decoder and chunker to read them back."""
    response = httpx.Response(
        status_code=status, headers=headers, stream=httpx.ByteStream(content), request=request, extensions=extensions
    )
    response._content = content
    response._num_bytes_downloaded = len(content)
    response.is_stream_consumed = True
    response.is_closed = True
    return response
