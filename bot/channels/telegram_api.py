"""The Bot API calls made for every update, as plain JSON over one HTTP connection pool.

python-telegram-bot builds an object for every request and every answer; for the calls made
once or more per update (getUpdates, sendMessage, editMessageText, answerCallbackQuery) the bot
needs none of that: it stores the update as Telegram sent it and keeps only a message id.
Everything else (files, menus, start-up) still goes through `telegram.Bot`.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from telegram.request import HTTPXRequest


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One TLS context for every HTTP client of the process.

    Each context reads the whole CA bundle (tens of milliseconds), and the bot opens six
    clients (python-telegram-bot's two per `Bot`, the sender's, the plain JSON ones); made
    once, starting the bot costs a fraction of that. A context may be shared between clients.
    """
    return httpx.create_ssl_context()


def ptb_request(**options: Any) -> HTTPXRequest:
    """A python-telegram-bot request object on the shared TLS context."""
    return HTTPXRequest(httpx_kwargs={"verify": tls_context()}, **options)


class ApiError(Exception):
    """Telegram answered a call with `ok: false`."""

    def __init__(self, code: int, description: str, retry_after: float | None = None) -> None:
        super().__init__(f"{code} {description}")
        self.code = code
        self.description = description
        self.retry_after = retry_after


def _when_written(written: Callable[[], None]) -> Callable[[str, Any], Awaitable[None]]:
    """An httpcore trace hook that calls `written` when a request's body has been sent."""

    async def trace(event: str, _info: Any) -> None:
        if event == "http11.send_request_body.complete":
            written()

    return trace


class BotApi:
    """POSTs JSON to `<base url><method>` and returns the `result` of the answer."""

    def __init__(
        self,
        base_url: str,
        *,
        connections: int = 64,
        read_timeout: float = 15.0,
    ) -> None:
        # `base_url` is the bot's own, token included (`telegram.Bot.base_url`).
        self.base_url = base_url.rstrip("/") + "/"
        self.client = httpx.AsyncClient(
            verify=tls_context(),
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
            timeout=httpx.Timeout(read_timeout, connect=5.0, pool=5.0),
        )

    async def call(
        self,
        method: str,
        params: dict[str, Any],
        *,
        read_timeout: float | None = None,
        written: Callable[[], None] | None = None,
    ) -> Any:
        """Make one call; raise `ApiError` for a refusal and httpx's errors for the network.

        `written` is called once the whole request has been written to the connection.
        """
        extra: dict[str, Any] = {}
        if read_timeout is not None:
            extra["timeout"] = httpx.Timeout(read_timeout, connect=5.0, pool=5.0)
        if written is not None:
            extra["extensions"] = {"trace": _when_written(written)}
        response = await self.client.post(self.base_url + method, json=params, **extra)
        try:
            answer = response.json()
        except ValueError:
            raise ApiError(response.status_code, "the answer was not JSON") from None
        if not isinstance(answer, dict):
            raise ApiError(response.status_code, "the answer was not a JSON object")
        if answer.get("ok"):
            return answer.get("result")
        parameters = answer.get("parameters") or {}
        retry_after = parameters.get("retry_after") if isinstance(parameters, dict) else None
        raise ApiError(
            int(answer.get("error_code") or response.status_code),
            str(answer.get("description") or ""),
            float(retry_after) if isinstance(retry_after, int | float) else None,
        )

    async def close(self) -> None:
        """Close the connection pool."""
        await self.client.aclose()
