"""Webhook mode: Telegram posts updates to a small ASGI app served by uvicorn.

An update is answered 200 only once `Intake.accept` has committed it, so Telegram forgets
nothing the bot has not stored; a database error answers 500 and Telegram posts it again
(a repeated update id is ignored by the inbox). Every post must carry the secret given to
setWebhook in `X-Telegram-Bot-Api-Secret-Token`; without it the answer is 403 and nothing
is stored. The same listener serves `/healthz` (database reachable, inbox lag) and
`/metrics` (Prometheus); a reverse proxy in front should publish only the webhook path.

Several replicas may run against one PostgreSQL database behind one proxy: each stores what
it is posted, any of them handles it (the inbox orders each chat across processes) and the
leader alone sends (see `bot.services.leader`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn
from sqlalchemy import text
from telegram import Update
from telegram.error import TelegramError

from bot.channels.metrics import CONTENT_TYPE, Metrics
from bot.channels.telegram import Serving, chat_of, serving
from bot.config import ConfigError, StartupError
from bot.runtime import Runtime
from bot.services.inbox import Intake, Received, inbox_depth

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

SECRET_HEADER = b"x-telegram-bot-api-secret-token"
# Telegram's updates are a few kilobytes; a photo arrives as a file id, not its bytes.
MAX_BODY = 1024 * 1024
HEALTH_TIMEOUT = 3.0
# uvicorn waits this long for requests in hand when told to stop (SIGTERM).
GRACEFUL_SECONDS = 5


async def health_of(runtime: Runtime) -> dict[str, Any]:
    """The database answers, and how long the oldest waiting update has waited."""
    async with asyncio.timeout(HEALTH_TIMEOUT), runtime.sessions() as session:
        await session.execute(text("SELECT 1"))
        depth, lag = await inbox_depth(session)
    return {"database": "ok", "inbox_depth": depth, "inbox_lag_seconds": round(lag, 3)}


class _TooLarge(Exception):
    """The request body is over the size limit."""


class WebhookApp:
    """The ASGI app: the webhook path, `/healthz` and `/metrics`."""

    def __init__(
        self,
        intake: Intake,
        *,
        path: str,
        secret: str,
        health: Callable[[], Awaitable[dict[str, Any]]],
        metrics: Metrics,
        refresh: Callable[[], Awaitable[None]],
        max_body: int = MAX_BODY,
    ) -> None:
        self.intake = intake
        self.path = path
        self.secret = secret.encode()
        self.health = health
        self.metrics = metrics
        self.refresh = refresh
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        method, path = scope["method"], scope["path"]
        if path == self.path:
            if method != "POST":
                await _respond(send, 405, b"", headers=[(b"allow", b"POST")])
                return
            status = await self._update(scope, receive)
            await _respond(send, status, b"")
        elif path == "/healthz" and method in ("GET", "HEAD"):
            await self._healthz(send)
        elif path == "/metrics" and method in ("GET", "HEAD"):
            await self._metrics(send)
        else:
            await _respond(send, 404, b"")

    async def _update(self, scope: Scope, receive: Receive) -> int:
        """Store one posted update; the status to answer."""
        headers = dict(scope["headers"])
        given = headers.get(SECRET_HEADER, b"")
        if not hmac.compare_digest(given, self.secret):
            return 403
        try:
            body = await _read_body(receive, headers, self.max_body)
        except _TooLarge:
            return 413
        try:
            data = json.loads(body)
            update = Update.de_json(data, None) if isinstance(data, dict) else None
        except Exception:
            update = None
        if update is None:
            return 400
        self.metrics.received.inc()
        try:
            await self.intake.accept([Received(update.update_id, chat_of(update), data)])
        except Exception:
            # Telegram posts it again later; the inbox ignores it if it was stored after all.
            log.exception("Could not store a posted update; Telegram will post it again")
            return 500
        return 200

    async def _healthz(self, send: Send) -> None:
        try:
            report = await self.health()
        except Exception as exc:
            log.warning("Health check: the database is unreachable (%s)", type(exc).__name__)
            await _respond_json(send, 503, {"database": "unreachable"})
            return
        await _respond_json(send, 200, report)

    async def _metrics(self, send: Send) -> None:
        with contextlib.suppress(Exception):
            # Without the database the depths keep their last values; the counters still count.
            async with asyncio.timeout(HEALTH_TIMEOUT):
                await self.refresh()
        body = self.metrics.render()
        await _respond(send, 200, body, content_type=CONTENT_TYPE.encode())


async def _read_body(receive: Receive, headers: dict[bytes, bytes], limit: int) -> bytes:
    declared = headers.get(b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    *,
    content_type: bytes = b"text/plain; charset=utf-8",
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _respond_json(send: Send, status: int, data: dict[str, Any]) -> None:
    await _respond(send, status, json.dumps(data).encode(), content_type=b"application/json")


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: the command line owns SIGTERM and SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class WebhookServing:
    """The bot taking updates by webhook: its pipeline, app and metrics."""

    serving: Serving
    app: WebhookApp
    metrics: Metrics
    port: int


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket, made before anything else starts: a port in use is one line."""
    try:
        return socket.create_server((host, port))
    except OSError as exc:
        raise StartupError(
            f"WEBHOOK_PORT: cannot listen on {host}:{port} ({exc.strerror or exc}); "
            "choose a free port (WEBHOOK_LISTEN, WEBHOOK_PORT)"
        ) from None


@asynccontextmanager
async def webhook_serving(
    runtime: Runtime,
    token: str,
    base_url: str | None,
    *,
    url: str,
    secret: str,
    path: str,
    listen: str = "127.0.0.1",
    port: int = 8080,
) -> AsyncIterator[WebhookServing]:
    """Listen for Telegram's posts, then tell Telegram where to post; stop gracefully on exit.

    On exit the listener stops taking requests and finishes those in hand (up to
    `GRACEFUL_SECONDS`); then the pipeline finishes the updates it is handling.
    """
    metrics = Metrics()
    with contextlib.closing(_listen(listen, port)) as listener:
        async with serving(
            runtime, token, base_url, polling=False, on_handled=metrics.observe_handled
        ) as served:
            metrics.watch(served)
            app = WebhookApp(
                served.intake,
                path=path,
                secret=secret,
                health=lambda: health_of(runtime),
                metrics=metrics,
                refresh=lambda: metrics.refresh(runtime.sessions),
            )
            config = uvicorn.Config(
                app,
                host=listen,
                port=port,
                lifespan="off",
                log_config=None,
                access_log=False,
                server_header=False,
                timeout_graceful_shutdown=GRACEFUL_SECONDS,
            )
            server = _Server(config)
            task = asyncio.create_task(server.serve(sockets=[listener]), name="webhook-listener")
            try:
                while not server.started:
                    if task.done():
                        task.result()
                        raise RuntimeError(f"could not listen on {listen}:{port}")
                    await asyncio.sleep(0.02)
                bound = server.servers[0].sockets[0].getsockname()[1]
                # Each replica may say this; Telegram keeps the one URL and secret.
                try:
                    await served.bot.set_webhook(
                        url,
                        secret_token=secret,
                        allowed_updates=Update.ALL_TYPES,
                        drop_pending_updates=False,
                    )
                except TelegramError as exc:
                    # E.g. an address Telegram cannot reach or a port it does not post to.
                    raise ConfigError(f"WEBHOOK_URL: Telegram refused it ({exc.message})") from exc
                log.info("Taking Telegram's updates at %s (listening on %s:%d)", url, listen, bound)
                yield WebhookServing(served, app, metrics, bound)
            finally:
                server.should_exit = True
                await asyncio.gather(task, return_exceptions=True)


async def serve_webhook(
    runtime: Runtime, token: str, base_url: str | None, stop: asyncio.Event
) -> None:
    """Run the bot in webhook mode until `stop` is set (the settings say where)."""
    settings = runtime.settings
    if settings.webhook_url is None or settings.webhook_secret is None:
        raise ValueError("webhook mode needs WEBHOOK_URL and WEBHOOK_SECRET")
    async with webhook_serving(
        runtime,
        token,
        base_url,
        url=settings.webhook_url,
        secret=settings.webhook_secret.get_secret_value(),
        path=settings.webhook_path,
        listen=settings.webhook_listen,
        port=settings.webhook_port,
    ):
        await stop.wait()
