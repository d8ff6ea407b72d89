"""The real bot talks to the fake Telegram over HTTP, and the fake answers as Telegram would."""

from __future__ import annotations

import asyncio
import datetime as dtm
from collections.abc import AsyncIterator

import aiohttp
import aiohttp.web
import pytest
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeChat,
    ChatMemberUpdated,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    Update,
)
from telegram.error import BadRequest, Conflict, Forbidden, InvalidToken, RetryAfter, TimedOut
from telegram.ext import (
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.fakebot import FakeTelegram
from bot.fakebot.harness import application_for, polling
from tests.services.test_delivery import until

MENU = InlineKeyboardMarkup(
    [
        [InlineKeyboardButton("Daftar", callback_data="register")],
        [InlineKeyboardButton("Info program", callback_data="info")],
    ]
)
SHARE_PHONE = ReplyKeyboardMarkup([[KeyboardButton("Bagikan nomor", request_contact=True)]])


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[Bot]:
    async with Bot(fake.token, base_url=fake.base_url, base_file_url=fake.base_file_url) as client:
        yield client


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Greet with the payload of /start and show the menu."""
    assert update.effective_message is not None
    await update.effective_message.reply_text(f"start {context.args}", reply_markup=MENU)


async def choose(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Acknowledge a menu button and replace the menu with the choice."""
    query = update.callback_query
    assert query is not None
    await query.answer("Dipilih", show_alert=True)
    await query.edit_message_text(f"chosen {query.data}")


async def ask_phone(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Ask for the phone number with a contact button."""
    assert update.effective_message is not None
    await update.effective_message.reply_text("phone?", reply_markup=SHARE_PHONE)


async def contact_received(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Say whose contact arrived."""
    assert update.effective_message is not None and update.effective_message.contact
    contact = update.effective_message.contact
    await update.effective_message.reply_text(f"contact {contact.phone_number} {contact.user_id}")


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Repeat the text."""
    assert update.effective_message is not None
    await update.effective_message.reply_text(f"echo {update.effective_message.text}")


@pytest.fixture
async def app(fake: FakeTelegram) -> AsyncIterator[None]:
    """Run a small real bot against the fake while the test runs."""
    application = application_for(fake)
    application.add_handler(CommandHandler("start", start))
    application.add_handler(CommandHandler("phone", ask_phone))
    application.add_handler(CallbackQueryHandler(choose))
    application.add_handler(MessageHandler(filters.CONTACT, contact_received))
    application.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    async with polling(application):
        yield


@pytest.mark.usefixtures("app")
async def test_a_start_command_with_payload_reaches_the_command_handler(fake: FakeTelegram) -> None:
    made = fake.user(1001)

    await made.send_text("/start ref-42")
    reply = await made.reply()

    assert reply.text == "start ['ref-42']"
    assert reply.chat_id == made.chat_id
    assert fake.messages(made.chat_id) == [reply]


@pytest.mark.usefixtures("app")
async def test_a_pressed_inline_button_reaches_the_callback_handler(fake: FakeTelegram) -> None:
    made = fake.user(1001)
    await made.send_command("start")
    menu = await made.reply()
    assert menu.buttons() == [["Daftar"], ["Info program"]]
    assert menu.button_data("Info program") == "info"

    await made.press("Daftar")
    edited = await made.reply()

    assert edited.message_id == menu.message_id
    assert edited.text == "chosen register"
    assert edited.edits == 1
    assert edited.buttons() == []
    assert made.callback_answers == [{"text": "Dipilih", "show_alert": True}]


@pytest.mark.usefixtures("app")
async def test_plain_text_is_answered_and_every_call_is_recorded(fake: FakeTelegram) -> None:
    ketut = fake.user(1002, "Ketut", language_code="en")

    await ketut.send_text("halo")

    assert (await ketut.reply()).text == "echo halo"
    sends = [call for call in fake.calls if call.method == "sendMessage"]
    assert sends[-1].params["chat_id"] == ketut.chat_id
    assert sends[-1].params["text"] == "echo halo"


@pytest.mark.usefixtures("app")
async def test_a_shared_contact_arrives_with_the_user_id_of_its_owner(fake: FakeTelegram) -> None:
    made = fake.user(1001)
    await made.send_command("phone")
    await made.reply()

    await made.press("Bagikan nomor")
    assert (await made.reply()).text == f"contact {made.phone_number} {made.user_id}"

    await made.send_contact("081234567890", user_id=None)
    assert (await made.reply()).text == "contact 081234567890 None"

    await made.send_contact("081298765432", user_id=2002)
    assert (await made.reply()).text == "contact 081298765432 2002"


@pytest.mark.usefixtures("app")
async def test_pressing_a_missing_button_names_the_buttons_there_are(fake: FakeTelegram) -> None:
    made = fake.user(1001)
    with pytest.raises(LookupError, match="no buttons"):
        await made.press("Daftar")

    await made.send_command("start")
    await made.reply()

    with pytest.raises(LookupError, match="Info program"):
        await made.press("Batal")


@pytest.mark.usefixtures("app")
async def test_a_raw_callback_reaches_the_bot_even_with_data_it_never_offered(
    fake: FakeTelegram,
) -> None:
    made = fake.user(1001)
    await made.send_command("start")
    menu = await made.reply()

    await made.press_data("old-button", message_id=menu.message_id)

    assert (await made.reply()).text == "chosen old-button"


async def test_the_waiting_user_is_told_what_the_bot_did_when_no_answer_comes(
    fake: FakeTelegram,
) -> None:
    made = fake.user(1001)
    await made.send_text("halo")

    with pytest.raises(TimeoutError, match=r"waited 0\.2 s for 1"):
        await made.replies(timeout=0.2)


async def test_sends_over_the_flood_limit_get_429_and_the_bot_sees_retry_after(
    fake: FakeTelegram, bot: Bot
) -> None:
    made, ketut = fake.user(1001), fake.user(1002, "Ketut")
    fake.per_chat_limit = 1
    fake.retry_after = 3
    await bot.send_message(made.chat_id, "satu")

    with pytest.raises(RetryAfter) as refused:
        await bot.send_message(made.chat_id, "dua")

    assert refused.value.retry_after == dtm.timedelta(seconds=3)
    await bot.send_message(ketut.chat_id, "other chats are not limited")
    fake.per_chat_limit = None
    fake.rate_limit = 1
    await bot.send_message(ketut.chat_id, "one per second for the whole bot")
    with pytest.raises(RetryAfter):
        await bot.send_message(made.chat_id, "over the bot-wide limit")
    stats = fake.stats()
    assert (stats.per_chat[made.chat_id].sent, stats.per_chat[made.chat_id].rate_limited) == (1, 2)
    assert (stats.total.sent, stats.total.rate_limited) == (3, 2)
    assert [m.text for m in fake.messages(made.chat_id)] == ["satu"]


async def test_a_user_who_blocks_the_bot_makes_sends_fail_with_forbidden(
    fake: FakeTelegram,
) -> None:
    statuses: asyncio.Queue[str] = asyncio.Queue()

    async def member_changed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert isinstance(update.my_chat_member, ChatMemberUpdated)
        await statuses.put(update.my_chat_member.new_chat_member.status)

    application = application_for(fake)
    application.add_handler(ChatMemberHandler(member_changed, ChatMemberHandler.MY_CHAT_MEMBER))
    made = fake.user(1001)

    async with polling(application):
        await made.block_bot()
        assert await asyncio.wait_for(statuses.get(), 5) == "kicked"
        with pytest.raises(Forbidden, match="blocked by the user"):
            await application.bot.send_message(made.chat_id, "halo")
        await made.unblock_bot()
        assert await asyncio.wait_for(statuses.get(), 5) == "member"
        await application.bot.send_message(made.chat_id, "selamat datang kembali")

    assert fake.stats().per_chat[made.chat_id].forbidden == 1
    assert [m.text for m in fake.messages(made.chat_id)] == ["selamat datang kembali"]


async def test_commands_are_kept_per_scope_and_language(fake: FakeTelegram, bot: Bot) -> None:
    made = fake.user(1001)
    await bot.set_my_commands([BotCommand("start", "Mulai")], language_code="id")
    await bot.set_my_commands(
        [BotCommand("export", "Unduh data")], scope=BotCommandScopeChat(made.chat_id)
    )

    assert fake.commands(language_code="id") == [{"command": "start", "description": "Mulai"}]
    assert fake.commands() == []
    leader_scope = {"type": "chat", "chat_id": made.chat_id}
    assert fake.commands(scope=leader_scope)[0]["command"] == "export"
    assert [c.command for c in await bot.get_my_commands(language_code="id")] == ["start"]
    await bot.delete_my_commands(language_code="id")
    assert await bot.get_my_commands(language_code="id") == ()
    with pytest.raises(BadRequest, match=r"(?i)bot_command_invalid"):
        await bot.set_my_commands([BotCommand("Mulai Daftar", "spaces are not allowed")])


async def test_a_failing_method_raises_bad_request_in_the_bot(fake: FakeTelegram, bot: Bot) -> None:
    fake.failing_methods["setMyCommands"] = 400

    with pytest.raises(BadRequest):
        await bot.set_my_commands([BotCommand("start", "Mulai")])

    assert fake.commands() == []
    assert fake.calls[-1].error is not None


async def test_long_polling_answers_as_soon_as_an_update_arrives(
    fake: FakeTelegram, bot: Bot
) -> None:
    made = fake.user(1001)
    poll = asyncio.create_task(bot.get_updates(timeout=30, read_timeout=40))
    _, still_open = await asyncio.wait({poll}, timeout=0.3)
    assert still_open, "getUpdates should wait for an update instead of answering at once"

    await made.send_text("halo")
    async with asyncio.timeout(10):
        updates = await poll

    assert [u.message.text for u in updates if u.message] == ["halo"]
    again = await bot.get_updates(offset=updates[-1].update_id)
    assert [u.update_id for u in again] == [updates[-1].update_id]
    assert await bot.get_updates(offset=updates[-1].update_id + 1) == ()


async def test_updates_the_bot_did_not_ask_for_are_not_delivered(
    fake: FakeTelegram, bot: Bot
) -> None:
    made = fake.user(1001)
    await made.block_bot()
    await made.send_text("halo")

    updates = await bot.get_updates(allowed_updates=["message"])

    assert [u.message.text for u in updates if u.message] == ["halo"]
    assert all(u.my_chat_member is None for u in updates)


async def test_editing_to_the_same_content_or_an_unknown_message_is_a_bad_request(
    fake: FakeTelegram, bot: Bot
) -> None:
    made = fake.user(1001)
    sent = await bot.send_message(made.chat_id, "Pilih program", reply_markup=MENU)

    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_text(
            "Pilih program", made.chat_id, sent.message_id, reply_markup=MENU
        )
    with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
        await bot.edit_message_text("Pilih", made.chat_id, sent.message_id + 100)
    with pytest.raises(BadRequest, match=r"(?i)query id is invalid"):
        await bot.answer_callback_query("no-such-query")

    await bot.edit_message_reply_markup(made.chat_id, sent.message_id, reply_markup=None)
    assert fake.messages(made.chat_id)[0].buttons() == []
    assert await bot.delete_message(made.chat_id, sent.message_id)
    assert fake.messages(made.chat_id) == []


async def test_callback_data_longer_than_64_bytes_is_refused_as_telegram_does(
    fake: FakeTelegram, bot: Bot
) -> None:
    made = fake.user(1001)
    too_long = InlineKeyboardMarkup([[InlineKeyboardButton("Desa", callback_data="d" * 65)]])

    with pytest.raises(BadRequest, match=r"(?i)button_data_invalid"):
        await bot.send_message(made.chat_id, "Pilih desa", reply_markup=too_long)

    assert fake.messages(made.chat_id) == []


async def test_sending_to_a_chat_nobody_opened_is_a_bad_request(bot: Bot) -> None:
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await bot.send_message(999, "halo")


async def test_a_wrong_token_is_unauthorized_and_an_unknown_method_not_found(
    fake: FakeTelegram,
) -> None:
    with pytest.raises(InvalidToken):
        async with Bot("654321:WRONG", base_url=fake.base_url):
            pass

    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{fake.base_url}{fake.token}/sendTelepathy") as response,
    ):
        assert response.status == 404
        assert await response.json() == {"ok": False, "error_code": 404, "description": "Not Found"}


async def test_uploaded_files_keep_their_bytes_and_user_files_can_be_downloaded(
    fake: FakeTelegram, bot: Bot
) -> None:
    made = fake.user(1001)
    await bot.send_document(made.chat_id, b"PK export", filename="laporan.xlsx", caption="Laporan")
    await bot.send_photo(made.chat_id, b"\x89PNG card", filename="kartu.png")

    document, photo = fake.messages(made.chat_id)
    assert (document.kind, document.file_name, document.file_bytes) == (
        "document",
        "laporan.xlsx",
        b"PK export",
    )
    assert document.caption == "Laporan"
    assert (photo.kind, photo.file_bytes) == ("photo", b"\x89PNG card")

    await made.send_document("ktp.pdf")
    (update,) = await bot.get_updates()
    assert update.message is not None and update.message.document is not None
    file = await update.message.document.get_file()
    assert (await file.download_as_bytearray()).startswith(b"%PDF")


async def test_a_slow_server_makes_the_bot_time_out(fake: FakeTelegram, bot: Bot) -> None:
    made = fake.user(1001)
    fake.delay = 5.0

    with pytest.raises(TimedOut):
        await bot.send_message(made.chat_id, "halo", read_timeout=0.2)


@pytest.mark.usefixtures("app")
async def test_a_driver_in_another_process_can_play_the_user_over_http(fake: FakeTelegram) -> None:
    made = fake.user(1001)
    users = f"{fake.url}/_fake/users/{made.user_id}"

    async with aiohttp.ClientSession() as session:
        async with session.post(f"{users}/text", json={"text": "/start"}) as response:
            assert response.status == 200
        menu = await made.reply()
        async with session.post(f"{users}/press", json={"label": "Info program"}) as response:
            assert response.status == 200
        await made.reply()
        async with session.post(f"{users}/press", json={"label": "Batal"}) as response:
            assert response.status == 404
        async with session.post(f"{users}/contact", json={"phone_number": "0812"}) as response:
            assert response.status == 200
        await made.reply()
        async with session.get(f"{fake.url}/_fake/chats/{made.chat_id}/messages") as response:
            messages = await response.json()

    assert [m["text"] for m in messages] == ["chosen info", f"contact 0812 {made.user_id}"]
    assert messages[0]["message_id"] == menu.message_id


class Receiver:
    """A stand-in webhook endpoint that answers with the statuses it is given, then 200."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.posts: list[tuple[int, str]] = []
        self.url = ""
        self._runner: aiohttp.web.AppRunner | None = None

    async def handle(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        body = await request.json()
        self.posts.append(
            (body["update_id"], request.headers.get("X-Telegram-Bot-Api-Secret-Token", ""))
        )
        return aiohttp.web.Response(status=self.statuses.pop(0) if self.statuses else 200)

    async def __aenter__(self) -> Receiver:
        app = aiohttp.web.Application()
        app.router.add_post("/hook", self.handle)
        self._runner = aiohttp.web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = aiohttp.web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}/hook"
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


async def test_with_a_webhook_set_updates_are_posted_with_the_secret_until_answered_2xx(
    fake: FakeTelegram, bot: Bot
) -> None:
    """A 500 is retried; getUpdates is a conflict while the webhook is set, as on Telegram."""
    async with Receiver([500]) as receiver:
        await bot.set_webhook(receiver.url, secret_token="s3cret_-x")
        user = fake.user(7001, "Made")
        await user.send_text("halo")
        await until(lambda: len(receiver.posts) == 2)
        first, again = receiver.posts
        assert first == again and first[1] == "s3cret_-x"
        assert [post.status for post in fake.webhook_posts] == [500, 200]
        info = await bot.get_webhook_info()
        assert info.url == receiver.url and info.pending_update_count == 0
        assert info.last_error_message == "Wrong response from the webhook: 500"
        with pytest.raises(Conflict):
            await bot.get_updates()
        await bot.delete_webhook()
        await user.send_text("lagi")
        updates = await bot.get_updates(timeout=1)
        assert [u.message.text for u in updates if u.message] == ["lagi"]
    assert len(receiver.posts) == 2


async def test_updates_alternate_between_webhook_targets_and_a_dead_one_is_skipped(
    fake: FakeTelegram, bot: Bot
) -> None:
    """With two targets each gets every other update; one that refuses passes its turn on."""
    async with Receiver() as one, Receiver() as two:
        fake.webhook_targets = [one.url, two.url]
        await bot.set_webhook(one.url, secret_token="x")
        user = fake.user(7002, "Wayan")
        for n in range(4):
            await user.send_text(f"pesan {n}")
        await until(lambda: len(one.posts) + len(two.posts) == 4)
        assert len(one.posts) == len(two.posts) == 2
        two.statuses = [503]
        await user.send_text("pesan 4")
        await user.send_text("pesan 5")
        await until(lambda: len(one.posts) + len(two.posts) == 7)
    ids = sorted(update_id for update_id, _ in one.posts + two.posts)
    assert len(set(ids)) == 6, "the refused update was posted again, each once accepted"


async def test_an_http_webhook_is_refused_unless_it_is_on_loopback(bot: Bot) -> None:
    """Telegram wants https; the fake also posts plain http to a bot on loopback."""
    with pytest.raises(BadRequest, match="https url"):
        await bot.set_webhook("http://example.org/hook")
    assert await bot.set_webhook("http://127.0.0.1:9/hook")
