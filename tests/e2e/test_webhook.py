"""Webhook mode: the fake Telegram posts updates to the bot's own HTTP listener (real HTTP,
real databases), and the bot stores each one before it answers."""

from __future__ import annotations

import asyncio
import contextlib
import io
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from bot.channels.webhook import WebhookServing, webhook_serving
from bot.config import load_settings
from bot.db.models import Application, InboxUpdate
from bot.fakebot import FakeTelegram, FakeUser
from bot.runtime import Runtime, open_runtime
from tests.conftest import DATA_KEY, PG_URL
from tests.e2e.chat import Person, texts
from tests.e2e.test_registration import register_until_summary
from tests.services.test_delivery import until

SECRET = "webhook-test_SECRET-0123456789"
PATH = "/telegram/hook"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.asynccontextmanager
async def webhook_bot(fake: FakeTelegram, runtime: Runtime) -> AsyncIterator[WebhookServing]:
    """The real bot in webhook mode on a free port, Telegram (the fake) told where to post.

    A test person answers the whole form in seconds, faster than the flood gate lets anyone.
    """
    runtime.settings.flood_burst = 100
    port = free_port()
    async with webhook_serving(
        runtime,
        fake.token,
        fake.base_url,
        url=f"http://127.0.0.1:{port}{PATH}",
        secret=SECRET,
        path=PATH,
        port=port,
    ) as hooked:
        hooked.serving.on_handled.append(fake.note_handled)
        yield hooked


@pytest.fixture
async def hooked(fake: FakeTelegram, runtime: Runtime) -> AsyncIterator[WebhookServing]:
    async with webhook_bot(fake, runtime) as running:
        yield running


def address(hooked: WebhookServing, path: str = PATH) -> str:
    return f"http://127.0.0.1:{hooked.port}{path}"


def text_update(user: FakeUser, update_id: int, text: str) -> dict[str, Any]:
    """A Bot API update of a private text message, as Telegram posts it."""
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": int(time.time()),
            "chat": user.chat_json(),
            "from": user.as_json(),
            "text": text,
        },
    }


async def post(
    url: str, body: dict[str, Any] | bytes, secret: str | None = SECRET
) -> aiohttp.ClientResponse:
    headers = {} if secret is None else {"X-Telegram-Bot-Api-Secret-Token": secret}
    async with aiohttp.ClientSession() as client:
        if isinstance(body, bytes):
            response = await client.post(url, data=io.BytesIO(body), headers=headers)
        else:
            response = await client.post(url, json=body, headers=headers)
        response.release()
        return response


def counted(hooked: WebhookServing, name: str) -> float | None:
    """A counter's value as /metrics would show it."""
    return hooked.metrics.registry.get_sample_value(f"bebas_cemas_{name}_total")


async def stored_updates(runtime: Runtime) -> int:
    async with runtime.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(InboxUpdate)) or 0)


async def test_a_post_without_the_secret_or_with_a_wrong_one_is_refused_and_stores_nothing(
    hooked: WebhookServing, fake: FakeTelegram, runtime: Runtime
) -> None:
    """403 for a missing or wrong secret header; nothing reaches the inbox or the person."""
    user = fake.user(6101, "Made")
    update = text_update(user, 900_001, "/start")
    assert (await post(address(hooked), update, secret=None)).status == 403
    assert (await post(address(hooked), update, secret=SECRET + "x")).status == 403
    assert (await post(address(hooked), update, secret="")).status == 403
    assert await stored_updates(runtime) == 0
    assert counted(hooked, "updates_received") == 0
    # Garbage with the right secret is a bad request, a huge body is refused unread.
    assert (await post(address(hooked), b"{not json")).status == 400
    assert (await post(address(hooked), b"x" * (1024 * 1024 + 1))).status == 413
    assert (await post(address(hooked, "/elsewhere"), update)).status == 404
    assert await stored_updates(runtime) == 0
    assert fake.messages(user.chat_id) == []


async def test_an_update_posted_twice_is_handled_once(
    hooked: WebhookServing, fake: FakeTelegram, runtime: Runtime
) -> None:
    """Telegram posts again when it missed the answer: the person still gets one answer.

    Every update of Kadek's is posted twice with its one update id; Wayan's once. Both say
    /start and then /bantuan, and see the same conversation.
    """
    kadek, wayan = fake.user(6201, "Kadek"), fake.user(6202, "Kadek")
    fake.webhook_repeats = 2
    for text in ("/start", "/bantuan"):
        await kadek.send_text(text)
        await kadek.replies()
    fake.webhook_repeats = 1
    for text in ("/start", "/bantuan"):
        await wayan.send_text(text)
        await wayan.replies()

    def conversation(user: FakeUser) -> list[str]:
        return [m.text or m.caption or "" for m in fake.messages(user.chat_id)]

    assert conversation(kadek) == conversation(wayan)
    assert len(conversation(kadek)) >= 2
    posted = [post.update_id for post in fake.webhook_posts if post.accepted]
    assert len(posted) == 6 and len(set(posted)) == 4
    assert counted(hooked, "updates_received") == 6
    assert counted(hooked, "updates_handled") == 4
    assert await stored_updates(runtime) == 4


async def test_a_worker_registers_fully_through_the_webhook(
    hooked: WebhookServing, fake: FakeTelegram, runtime: Runtime
) -> None:
    """The whole form over webhook posts; /healthz and /metrics tell what happened."""
    person = Person(fake.user(6301, "Made", language_code="id"))
    await register_until_summary(person)
    replies = await person.tap("summary.send")
    assert "BC-" in texts(replies)
    async with runtime.sessions() as session:
        application = await session.scalar(select(Application))
    assert application is not None and application.status == "submitted"
    assert application.village_code == "51.02.05.2006"
    assert application.reference is not None and application.reference in texts(replies)
    assert all(post.accepted for post in fake.webhook_posts)

    async with aiohttp.ClientSession() as client:
        async with client.get(address(hooked, "/healthz")) as response:
            assert response.status == 200
            health = await response.json()
        async with client.get(address(hooked, "/metrics")) as response:
            assert response.status == 200
            assert response.content_type == "text/plain"
            exposition = await response.text()
    assert health["database"] == "ok" and health["inbox_lag_seconds"] >= 0
    updates = len(fake.webhook_posts)
    metric = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in exposition.splitlines()
        if line and not line.startswith("#")
    }
    assert metric["bebas_cemas_updates_received_total"] == updates
    assert metric["bebas_cemas_updates_handled_total"] == updates
    assert metric["bebas_cemas_handler_seconds_count"] == updates
    assert metric['bebas_cemas_replies_total{outcome="sent"}'] >= updates
    assert metric["bebas_cemas_rate_limited_total"] == 0
    assert metric["bebas_cemas_inbox_depth"] == 0
    assert "bebas_cemas_outbox_depth" in metric
    assert metric["bebas_cemas_leader"] == 1


class TcpProxy:
    """Forwards a local port to the database; `close` cuts every connection, `open` heals."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while chunk := await reader.read(65536):
                writer.write(chunk)
                await writer.drain()
        finally:
            self._writers.discard(writer)
            writer.transport.abort()


async def health(hooked: WebhookServing) -> int:
    async with (
        aiohttp.ClientSession() as client,
        client.get(address(hooked, "/healthz")) as response,
    ):
        return response.status


@pytest.mark.parametrize("settings", ["postgres"], indirect=True)
async def test_healthz_fails_while_the_database_is_down_and_recovers_by_itself(
    runtime: Runtime, fake: FakeTelegram, postgres_schema: str
) -> None:
    """The bot reaches PostgreSQL through a proxy that the test cuts and restores.

    While it is cut, /healthz is 503, a posted update is answered 500 (Telegram keeps it
    and posts it again) and the process loses the lead; once the database is back, /healthz
    is 200 again, the lead is taken again and the person gets the answer. (SQLite is a
    file in the process: it has no "down" to test.)
    """
    target = make_url(PG_URL)
    proxy = TcpProxy(target.host or "127.0.0.1", target.port or 5432)
    await proxy.open()
    through_proxy = target.set(host="127.0.0.1", port=proxy.port)
    settings = load_settings(
        _env_file=None,
        data_key=DATA_KEY,
        database_url=through_proxy.render_as_string(hide_password=False),
    )
    options = {"connect_args": {"server_settings": {"search_path": postgres_schema}}}
    try:
        async with (
            open_runtime(settings, **options) as proxied,
            webhook_bot(fake, proxied) as hooked,
        ):
            assert await health(hooked) == 200
            await proxy.close()
            assert await health(hooked) == 503
            person = Person(fake.user(6401, "Made"))
            await person.user.send_text("/start")
            await until(lambda: any(p.status == 500 for p in fake.webhook_posts), 15)
            assert await health(hooked) == 503
            # The lead (sending) is lost with its connection, and must be taken again.
            leading = hooked.serving.leadership.leading
            await until(lambda: not leading.is_set(), 15)
            await proxy.open()

            async def healthy() -> bool:
                return await health(hooked) == 200

            await until(healthy, 20)
            await until(leading.is_set, 15)
            replies = await person.user.replies(timeout=30)
            assert "Rp16.800" in texts(replies)
    finally:
        await proxy.close()
