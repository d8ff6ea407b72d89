"""A Telegram Bot API server on loopback that the real bot reaches through ``base_url``.

It keeps what Telegram keeps (the bot's messages per chat, pending updates, commands),
answers like Telegram (including its error descriptions), and can misbehave on purpose:
flood limits, blocked users, slow answers and failing methods.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from bot.fakebot.chat import ChatState, Signal, TokenBucket
from bot.fakebot.driver import driver_routes
from bot.fakebot.records import (
    ApiCall,
    BotMessage,
    ChatEvent,
    EventKind,
    TrafficStats,
    UploadedFile,
    WebhookPost,
)
from bot.fakebot.rules import (
    BLOCKABLE_METHODS,
    CHAT_ACTIONS,
    COMMAND_NAME,
    FAULT_DESCRIPTIONS,
    NOT_MODIFIED,
    NOT_SENT_BY_DEFAULT,
    SEND_METHODS,
    ApiError,
    inline_part,
    int_param,
    validate_markup,
    visible_length,
)
from bot.fakebot.user import FakeUser
from bot.fakebot.wire import failure, ok, read_params

_MAX_UPLOAD = 50 * 1024 * 1024
_LOOPBACK = ("127.0.0.1", "localhost", "::1")
# Telegram retries a webhook that did not answer 2xx; the fake does so sooner.
_WEBHOOK_BACKOFF = (0.05, 1.0)

Handler = Callable[[dict[str, Any]], Awaitable[Any]]


@dataclass
class _StoredFile:
    file_id: str
    file_unique_id: str
    file_path: str
    file_name: str | None
    content: bytes
    mime_type: str | None = None


class FakeTelegram:
    """The Telegram Bot API for one bot, served on loopback."""

    def __init__(
        self,
        *,
        token: str = "123456:FAKE-TOKEN",
        bot_id: int = 123456,
        bot_username: str = "BebasCemasBot",
        bot_name: str = "Bebas Cemas",
    ) -> None:
        self.token = token
        self.bot_id = bot_id
        self.bot_username = bot_username
        self.bot_name = bot_name
        self.calls: list[ApiCall] = []
        # Faults, all off by default and changeable while the bot runs.
        self.rate_limit: float | None = None
        self.per_chat_limit: float | None = None
        self.retry_after = 1
        self.blocked_chats: set[int] = set()
        self.delay = 0.0
        # Requests received and not yet answered, and the most ever open at once (sends only).
        self.open_sends = 0
        # Every update id ever queued for the bot, in order, and the updates themselves (what
        # people typed: the tests' log scan looks for it in the logs).
        self.update_ids: list[int] = []
        self.queued: list[dict[str, Any]] = []
        self.peak_open_sends = 0
        self.failing_methods: dict[str, int] = {}
        # What the bot configured.
        self.webhook_url = ""
        self.webhook_secret = ""
        # While a webhook is set, updates are posted to it (or in turn to each of these, as a
        # proxy in front of replicas would) instead of waiting for getUpdates.
        self.webhook_targets: list[str] = []
        self.webhook_posts: list[WebhookPost] = []
        # Post each update this many times (Telegram posts again when an answer is lost).
        self.webhook_repeats = 1
        self._pusher: asyncio.Task[None] | None = None
        self.menu_buttons: dict[int | None, dict[str, Any]] = {}
        self.descriptions: dict[tuple[str, str], str] = {}
        self._commands: dict[tuple[str, str], list[dict[str, str]]] = {}

        self._users: dict[int, FakeUser] = {}
        self._chats: dict[int, ChatState] = {}
        self.tracks_handling = False
        self._updates: list[dict[str, Any]] = []
        self._updates_signal = Signal()
        self._allowed_updates: frozenset[str] | None = None
        self._open_queries: dict[str, FakeUser] = {}
        self._files: dict[str, _StoredFile] = {}
        self._subscribers: list[asyncio.Queue[ChatEvent]] = []
        self._bucket = TokenBucket()
        self._serial = 0
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._url = ""
        self._methods: dict[str, Handler] = {
            "getme": self._get_me,
            "getupdates": self._get_updates,
            "deletewebhook": self._delete_webhook,
            "setwebhook": self._set_webhook,
            "getwebhookinfo": self._get_webhook_info,
            "close": self._accept,
            "logout": self._accept,
            "sendmessage": self._send_message,
            "sendphoto": self._send_photo,
            "senddocument": self._send_document,
            "editmessagetext": self._edit_message_text,
            "editmessagereplymarkup": self._edit_message_reply_markup,
            "editmessagecaption": self._edit_message_caption,
            "deletemessage": self._delete_message,
            "answercallbackquery": self._answer_callback_query,
            "sendchataction": self._send_chat_action,
            "setmycommands": self._set_my_commands,
            "getmycommands": self._get_my_commands,
            "deletemycommands": self._delete_my_commands,
            "setchatmenubutton": self._set_chat_menu_button,
            "getchatmenubutton": self._get_chat_menu_button,
            "setmydescription": self._set_my_description,
            "getmydescription": self._get_my_description,
            "setmyshortdescription": self._set_my_short_description,
            "getmyshortdescription": self._get_my_short_description,
            "getchat": self._get_chat,
            "getfile": self._get_file,
        }

    # Life cycle.

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Start serving; port 0 picks a free port."""
        app = web.Application(client_max_size=_MAX_UPLOAD)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        app.router.add_routes(driver_routes(self))
        self._closing.clear()
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        bound_host, bound_port = runner.addresses[0][:2]
        self._url = f"http://{bound_host}:{bound_port}"

    async def stop(self) -> None:
        """Stop serving; pending long polls and delays end at once."""
        self._closing.set()
        self._updates_signal.notify()
        if self._pusher is not None:
            self._pusher.cancel()
            await asyncio.gather(self._pusher, return_exceptions=True)
            self._pusher = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTelegram:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        """The server's root, e.g. ``http://127.0.0.1:PORT`` (for the ``/_fake`` routes)."""
        if not self._url:
            raise RuntimeError("FakeTelegram is not started")
        return self._url

    @property
    def base_url(self) -> str:
        """The Bot API URL in python-telegram-bot's form (it appends the token)."""
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        """The file download URL in python-telegram-bot's form."""
        return f"{self.url}/file/bot"

    # The people and what they see.

    def user(
        self,
        user_id: int,
        first_name: str = "Made",
        *,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "id",
    ) -> FakeUser:
        """Return the simulated user with this id, creating them (and their chat) once."""
        if user_id not in self._users:
            chat = ChatState(chat_id=user_id)
            self._chats[user_id] = chat
            self._users[user_id] = FakeUser(
                self,
                chat,
                user_id,
                first_name,
                last_name=last_name,
                username=username,
                language_code=language_code,
            )
        return self._users[user_id]

    def messages(self, chat_id: int) -> list[BotMessage]:
        """Return the bot's messages in a chat as they are now, oldest first."""
        chat = self._chats.get(chat_id)
        return chat.current() if chat else []

    def commands(
        self, *, scope: dict[str, Any] | None = None, language_code: str = ""
    ) -> list[dict[str, str]]:
        """Return the command list the bot set for a scope and language."""
        return list(self._commands.get(self._commands_key(scope, language_code), []))

    def stats(self) -> TrafficStats:
        """Return a snapshot of sends, 429s and 403s per chat."""
        return TrafficStats({chat_id: replace(chat.stats) for chat_id, chat in self._chats.items()})

    @contextlib.contextmanager
    def subscribe(self) -> Iterator[asyncio.Queue[ChatEvent]]:
        """Receive every message the bot sends, edits or deletes and every callback answer."""
        queue: asyncio.Queue[ChatEvent] = asyncio.Queue()
        self._subscribers.append(queue)
        try:
            yield queue
        finally:
            self._subscribers.remove(queue)

    # Used by FakeUser.

    def enqueue_update(self, body: dict[str, Any]) -> int:
        """Queue an update for the bot (``body`` without update_id) and return its id."""
        update_id = self._next_serial()
        self._updates.append({"update_id": update_id, **body})
        self.update_ids.append(update_id)
        self.queued.append(body)
        chat = self._chats.get(_chat_id_of(body) or 0)
        if chat is not None:
            chat.updates_sent += 1
        self._updates_signal.notify()
        return update_id

    def note_handled(self, chat_id: int) -> None:
        """A driver that sees the bot finish an update reports it here (see ``tracks_handling``).

        From the first report on, ``FakeUser.replies`` waits for the bot to have handled every
        update of the chat instead of waiting for a quiet period: exact, and faster.
        """
        self.tracks_handling = True
        chat = self._chats.get(chat_id)
        if chat is not None:
            chat.updates_handled += 1
            chat.activity.notify()

    def store_file(
        self, content: bytes, *, file_name: str | None = None, mime_type: str | None = None
    ) -> dict[str, Any]:
        """Keep a file for getFile and downloads; return its Bot API file fields."""
        serial = self._next_serial()
        suffix = "." + file_name.rsplit(".", 1)[-1] if file_name and "." in file_name else ""
        stored = _StoredFile(
            file_id=f"fake-file-{serial}",
            file_unique_id=f"fake-unique-{serial}",
            file_path=f"files/file_{serial}{suffix}",
            file_name=file_name,
            content=content,
            mime_type=mime_type,
        )
        self._files[stored.file_id] = stored
        return self._file_json(stored)

    def open_callback_query(self, user: FakeUser) -> str:
        """Return a new callback query id the bot may answer once."""
        query_id = str(self._next_serial())
        self._open_queries[query_id] = user
        return query_id

    def set_blocked(self, user: FakeUser, *, blocked: bool) -> None:
        """Block or unblock the bot for a user and tell the bot with a my_chat_member update."""
        member = {"status": "member", "user": self._bot_json()}
        kicked = {"status": "kicked", "user": self._bot_json(), "until_date": 0}
        if blocked:
            self.blocked_chats.add(user.chat_id)
        else:
            self.blocked_chats.discard(user.chat_id)
        self.enqueue_update(
            {
                "my_chat_member": {
                    "chat": user.chat_json(),
                    "from": user.as_json(),
                    "date": int(time.time()),
                    "old_chat_member": member if blocked else kicked,
                    "new_chat_member": kicked if blocked else member,
                }
            }
        )

    def message_json(self, message: BotMessage) -> dict[str, Any]:
        """Return the Bot API ``Message`` object of a bot message as it is now."""
        data: dict[str, Any] = {
            "message_id": message.message_id,
            "date": message.date,
            "chat": self._users[message.chat_id].chat_json(),
            "from": self._bot_json(),
        }
        if message.edit_date is not None:
            data["edit_date"] = message.edit_date
        if message.kind == "text":
            data["text"] = message.text
            if message.entities:
                data["entities"] = message.entities
        else:
            stored = self._files.get(message.file_id or "")
            file = self._file_json(stored) if stored else {}
            if message.kind == "photo":
                data["photo"] = [{**file, "width": 1280, "height": 960}]
            else:
                data["document"] = {**file, "file_name": message.file_name}
                if message.mime_type:
                    data["document"]["mime_type"] = message.mime_type
            if message.caption:
                data["caption"] = message.caption
        if markup := inline_part(message.reply_markup):
            data["reply_markup"] = markup
        return data

    # HTTP.

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await read_params(request)
        call = ApiCall(method=method, params=params, at=time.monotonic())
        self.calls.append(call)
        sending = method.lower() in SEND_METHODS
        if sending:
            self.open_sends += 1
            self.peak_open_sends = max(self.peak_open_sends, self.open_sends)
        try:
            if self.delay > 0:
                await self._pause(self.delay)
            result = await self._dispatch(request.match_info["token"], method, params)
        except ApiError as error:
            call.error = f"{error.code} {error.description}"
            return failure(error.code, error.description, error.parameters)
        finally:
            if sending:
                self.open_sends -= 1
            # Any call about a chat means the bot is still busy there (see FakeUser.replies).
            chat_id = params.get("chat_id")
            if isinstance(chat_id, int) and chat_id in self._chats:
                self._chats[chat_id].activity.notify()
        return ok(result)

    async def _dispatch(self, token: str, method: str, params: dict[str, Any]) -> Any:
        if token != self.token:
            raise ApiError(401, "Unauthorized")
        name = method.lower()
        handler = self._methods.get(name)
        if handler is None:
            raise ApiError(404, "Not Found")
        failing = {key.lower(): code for key, code in self.failing_methods.items()}
        if name in failing:
            code = failing[name]
            if code == 429:
                raise self._too_many_requests()
            raise ApiError(code, FAULT_DESCRIPTIONS.get(code, f"Error {code}"))
        if name not in BLOCKABLE_METHODS:
            return await handler(params)
        chat = self._chat_of(params)
        if chat.chat_id in self.blocked_chats:
            chat.stats.forbidden += 1
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        if name in SEND_METHODS:
            self._check_flood(chat)
        result = await handler(params)
        if name in SEND_METHODS:
            chat.stats.sent += 1
        return result

    async def _handle_file(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return failure(401, "Unauthorized")
        path = request.match_info["path"]
        for stored in self._files.values():
            if stored.file_path == path:
                return web.Response(body=stored.content)
        return failure(404, "Not Found")

    # Bot API methods.

    async def _accept(self, params: dict[str, Any]) -> bool:
        return True

    async def _get_me(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            **self._bot_json(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        if self.webhook_url:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = int_param(params, "offset", 0)
        limit = min(max(int_param(params, "limit", 100), 1), 100)
        timeout = max(int_param(params, "timeout", 0), 0)
        if "allowed_updates" in params:
            self._allowed_updates = frozenset(params["allowed_updates"] or ()) or None
        if offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        elif offset < 0:
            self._updates = self._updates[offset:]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            self._updates = [u for u in self._updates if self._is_allowed(u)]
            if self._updates or self._closing.is_set():
                return self._updates[:limit]
            if not await self._updates_signal.wait(deadline - loop.time()):
                return []

    async def _delete_webhook(self, params: dict[str, Any]) -> bool:
        self.webhook_url = ""
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    async def _set_webhook(self, params: dict[str, Any]) -> bool:
        url = str(params.get("url") or "")
        # Telegram wants https; the fake also posts plain http, to loopback only.
        parts = urlsplit(url)
        if url and not (
            parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOOPBACK)
        ):
            raise ApiError(
                400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"
            )
        secret = str(params.get("secret_token") or "")
        if secret and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        self.webhook_url = url
        self.webhook_secret = secret
        if "allowed_updates" in params:
            self._allowed_updates = frozenset(params["allowed_updates"] or ()) or None
        if params.get("drop_pending_updates"):
            self._updates.clear()
        if url and (self._pusher is None or self._pusher.done()):
            self._pusher = asyncio.create_task(self._push_updates(), name="fake-webhook")
        self._updates_signal.notify()
        return True

    async def _get_webhook_info(self, params: dict[str, Any]) -> dict[str, Any]:
        info: dict[str, Any] = {
            "url": self.webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        failed = [post for post in self.webhook_posts if not post.accepted]
        if failed:
            info["last_error_date"] = int(failed[-1].wall_time)
            info["last_error_message"] = failed[-1].error
        return info

    # Webhook delivery.

    async def _push_updates(self) -> None:
        """Post each update, oldest first, until it is answered 2xx; then the next one.

        One post at a time keeps each chat's order, as Telegram does for one chat. After a
        failure the update is posted again after a backoff, to the next target if there are
        several (a proxy would send the retry to another replica too). `webhook_repeats`
        posts an accepted update again, as Telegram does when the answer to a post is lost.
        """
        turn = 0
        delay = _WEBHOOK_BACKOFF[0]
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as client:
            while self.webhook_url and not self._closing.is_set():
                self._updates = [u for u in self._updates if self._is_allowed(u)]
                if not self._updates:
                    await self._updates_signal.wait(1.0)
                    continue
                update = self._updates[0]
                targets = self.webhook_targets or [self.webhook_url]
                url = targets[turn % len(targets)]
                turn += 1
                post = await self._post_update(client, url, update)
                self.webhook_posts.append(post)
                if post.accepted:
                    for _ in range(self.webhook_repeats - 1):
                        url = targets[turn % len(targets)]
                        turn += 1
                        self.webhook_posts.append(await self._post_update(client, url, update))
                    if self._updates and self._updates[0] is update:
                        self._updates.pop(0)
                    delay = _WEBHOOK_BACKOFF[0]
                else:
                    await self._pause(delay)
                    delay = min(delay * 2, _WEBHOOK_BACKOFF[1])

    async def _post_update(
        self, client: aiohttp.ClientSession, url: str, update: dict[str, Any]
    ) -> WebhookPost:
        headers = {"X-Telegram-Bot-Api-Secret-Token": self.webhook_secret}
        chat_id = _chat_id_of(update)
        post = WebhookPost(update["update_id"], chat_id, url, 0, time.monotonic(), time.time())
        try:
            async with client.post(url, json=update, headers=headers) as response:
                post.status = response.status
                if not post.accepted:
                    post.error = f"Wrong response from the webhook: {response.status}"
        except (aiohttp.ClientError, TimeoutError) as exc:
            post.error = f"Connection failed: {type(exc).__name__}"
        return post

    async def _send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat_of(params)
        text = params.get("text")
        parse_mode = params.get("parse_mode")
        if not isinstance(text, str) or not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if visible_length(text, parse_mode) > 4096:
            raise ApiError(400, "Bad Request: message is too long")
        message = BotMessage(
            message_id=chat.next_message_id(),
            chat_id=chat.chat_id,
            text=text,
            reply_markup=validate_markup(params.get("reply_markup")),
            parse_mode=parse_mode,
            entities=params.get("entities"),
            date=int(time.time()),
        )
        return self._publish(chat, message, "sent")

    async def _send_photo(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._send_file(params, "photo")

    async def _send_document(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._send_file(params, "document")

    def _send_file(self, params: dict[str, Any], kind: str) -> dict[str, Any]:
        chat = self._chat_of(params)
        source = params.get(kind)
        content: bytes | None
        file_name: str | None
        mime_type: str | None = None
        if isinstance(source, UploadedFile):
            content, file_name = source.content, source.file_name
            mime_type = source.content_type
        elif isinstance(source, str) and source in self._files:
            stored = self._files[source]
            content, file_name, mime_type = stored.content, stored.file_name, stored.mime_type
        elif isinstance(source, str) and source.startswith(("http://", "https://")):
            content, file_name = None, source.rsplit("/", 1)[-1] or None
        elif source is None:
            raise ApiError(400, f"Bad Request: there is no {kind} in the request")
        else:
            raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
        caption = params.get("caption")
        parse_mode = params.get("parse_mode")
        if isinstance(caption, str) and visible_length(caption, parse_mode) > 1024:
            raise ApiError(400, "Bad Request: message caption is too long")
        file = self.store_file(content or b"", file_name=file_name, mime_type=mime_type)
        message = BotMessage(
            message_id=chat.next_message_id(),
            chat_id=chat.chat_id,
            caption=caption,
            reply_markup=validate_markup(params.get("reply_markup")),
            kind=kind,
            file_name=file_name,
            file_bytes=content,
            mime_type=mime_type,
            parse_mode=parse_mode,
            entities=params.get("caption_entities"),
            file_id=file["file_id"],
            date=int(time.time()),
        )
        return self._publish(chat, message, "sent")

    async def _edit_message_text(self, params: dict[str, Any]) -> dict[str, Any]:
        chat, message = self._editable(params)
        text = params.get("text")
        parse_mode = params.get("parse_mode")
        if not isinstance(text, str) or not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if message.kind != "text":
            raise ApiError(400, "Bad Request: there is no text in the message to edit")
        if visible_length(text, parse_mode) > 4096:
            raise ApiError(400, "Bad Request: message is too long")
        markup = self._edited_markup(message, params)
        entities = params.get("entities")
        if (text, parse_mode, entities) == (message.text, message.parse_mode, message.entities):
            self._require_markup_change(message, params)
        message.text, message.parse_mode, message.entities = text, parse_mode, entities
        message.reply_markup = markup
        return self._publish(chat, message, "edited")

    async def _edit_message_caption(self, params: dict[str, Any]) -> dict[str, Any]:
        chat, message = self._editable(params)
        if message.kind == "text":
            raise ApiError(400, "Bad Request: there is no caption in the message to edit")
        caption = params.get("caption")
        parse_mode = params.get("parse_mode")
        if isinstance(caption, str) and visible_length(caption, parse_mode) > 1024:
            raise ApiError(400, "Bad Request: message caption is too long")
        markup = self._edited_markup(message, params)
        if (caption, parse_mode) == (message.caption, message.parse_mode):
            self._require_markup_change(message, params)
        message.caption, message.parse_mode = caption, parse_mode
        message.entities = params.get("caption_entities")
        message.reply_markup = markup
        return self._publish(chat, message, "edited")

    async def _edit_message_reply_markup(self, params: dict[str, Any]) -> dict[str, Any]:
        chat, message = self._editable(params)
        markup = self._edited_markup(message, params)
        self._require_markup_change(message, params)
        message.reply_markup = markup
        return self._publish(chat, message, "edited")

    async def _delete_message(self, params: dict[str, Any]) -> bool:
        chat = self._chat_of(params)
        message_id = int_param(params, "message_id", 0)
        message = chat.find(message_id)
        if message is not None:
            message.deleted = True
            self._publish(chat, message, "deleted")
        elif message_id in chat.user_message_ids:
            chat.user_message_ids.discard(message_id)
        else:
            raise ApiError(400, "Bad Request: message to delete not found")
        return True

    async def _answer_callback_query(self, params: dict[str, Any]) -> bool:
        user = self._open_queries.pop(str(params.get("callback_query_id")), None)
        if user is None:
            raise ApiError(
                400,
                "Bad Request: query is too old and response timeout expired or query ID is invalid",
            )
        answer = {key: value for key, value in params.items() if key != "callback_query_id"}
        user.callback_answers.append(answer)
        self._notify(ChatEvent(chat_id=user.chat_id, kind="answered", answer=answer))
        self._chats[user.chat_id].activity.notify()
        return True

    async def _send_chat_action(self, params: dict[str, Any]) -> bool:
        self._chat_of(params)
        if params.get("action") not in CHAT_ACTIONS:
            raise ApiError(400, "Bad Request: wrong parameter action in request")
        return True

    async def _set_my_commands(self, params: dict[str, Any]) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise ApiError(400, "Bad Request: can't parse commands JSON object")
        for command in commands:
            name = command.get("command") if isinstance(command, dict) else None
            description = command.get("description") if isinstance(command, dict) else None
            if not isinstance(name, str) or not COMMAND_NAME.fullmatch(name):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not isinstance(description, str) or not 1 <= len(description) <= 256:
                raise ApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
        key = self._commands_key(params.get("scope"), params.get("language_code"))
        self._commands[key] = [dict(command) for command in commands]
        return True

    async def _get_my_commands(self, params: dict[str, Any]) -> list[dict[str, str]]:
        return self.commands(
            scope=params.get("scope"), language_code=str(params.get("language_code") or "")
        )

    async def _delete_my_commands(self, params: dict[str, Any]) -> bool:
        key = self._commands_key(params.get("scope"), params.get("language_code"))
        self._commands.pop(key, None)
        return True

    async def _set_chat_menu_button(self, params: dict[str, Any]) -> bool:
        chat_id = params.get("chat_id")
        if chat_id is not None:
            chat_id = self._chat_of(params).chat_id
        self.menu_buttons[chat_id] = params.get("menu_button") or {"type": "default"}
        return True

    async def _get_chat_menu_button(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = params.get("chat_id")
        default = self.menu_buttons.get(None, {"type": "commands"})
        return self.menu_buttons.get(chat_id, default) if chat_id is not None else default

    async def _set_my_description(self, params: dict[str, Any]) -> bool:
        return self._set_description(params, "description", 512)

    async def _set_my_short_description(self, params: dict[str, Any]) -> bool:
        return self._set_description(params, "short_description", 120)

    async def _get_my_description(self, params: dict[str, Any]) -> dict[str, str]:
        return self._get_description(params, "description")

    async def _get_my_short_description(self, params: dict[str, Any]) -> dict[str, str]:
        return self._get_description(params, "short_description")

    async def _get_chat(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat_of(params)
        return {
            **self._users[chat.chat_id].chat_json(),
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }

    async def _get_file(self, params: dict[str, Any]) -> dict[str, Any]:
        stored = self._files.get(str(params.get("file_id")))
        if stored is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        return {**self._file_json(stored), "file_path": stored.file_path}

    # Helpers.

    def _next_serial(self) -> int:
        self._serial += 1
        return self._serial

    def _bot_json(self) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.bot_name,
            "username": self.bot_username,
        }

    @staticmethod
    def _file_json(stored: _StoredFile) -> dict[str, Any]:
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.content),
        }

    def _chat_of(self, params: dict[str, Any]) -> ChatState:
        chat_id = params.get("chat_id")
        if chat_id is None or chat_id == "":
            raise ApiError(400, "Bad Request: chat_id is empty")
        if isinstance(chat_id, str) and re.fullmatch(r"-?\d+", chat_id):
            chat_id = int(chat_id)
        chat = self._chats.get(chat_id) if isinstance(chat_id, int) else None
        if chat is None:
            raise ApiError(400, "Bad Request: chat not found")
        return chat

    def _editable(self, params: dict[str, Any]) -> tuple[ChatState, BotMessage]:
        if "inline_message_id" in params:
            raise ApiError(400, "Bad Request: MESSAGE_ID_INVALID")
        chat = self._chat_of(params)
        message = chat.find(int_param(params, "message_id", 0))
        if message is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        return chat, message

    @staticmethod
    def _edited_markup(message: BotMessage, params: dict[str, Any]) -> dict[str, Any] | None:
        """Return the markup after an edit: a reply keyboard stays, an inline one is replaced."""
        new = validate_markup(params.get("reply_markup"))
        if new is not None and "inline_keyboard" not in new:
            raise ApiError(400, "Bad Request: inline keyboard expected")
        if new is None and inline_part(message.reply_markup) is None:
            return message.reply_markup
        return new

    @staticmethod
    def _require_markup_change(message: BotMessage, params: dict[str, Any]) -> None:
        if validate_markup(params.get("reply_markup")) == inline_part(message.reply_markup):
            raise ApiError(400, NOT_MODIFIED)

    def _publish(self, chat: ChatState, message: BotMessage, kind: EventKind) -> dict[str, Any]:
        """Record a change of a bot message, tell subscribers, return the message object."""
        if kind == "sent":
            chat.messages.append(message)
        elif kind == "edited":
            message.edits += 1
            message.edit_date = int(time.time())
        chat.record_change(message)
        self._notify(ChatEvent(chat_id=chat.chat_id, kind=kind, message=message))
        return self.message_json(message)

    def _notify(self, event: ChatEvent) -> None:
        for queue in self._subscribers:
            queue.put_nowait(event)

    def _too_many_requests(self) -> ApiError:
        return ApiError(
            429,
            f"Too Many Requests: retry after {self.retry_after}",
            {"retry_after": self.retry_after},
        )

    def _check_flood(self, chat: ChatState) -> None:
        """Refuse a send over the bot-wide or per-chat limit with 429, as Telegram does."""
        now = time.monotonic()
        over_bot = self.rate_limit is not None and not self._bucket.allows(self.rate_limit, now)
        over_chat = self.per_chat_limit is not None and not chat.bucket.allows(
            self.per_chat_limit, now
        )
        if over_bot or over_chat:
            chat.stats.rate_limited += 1
            raise self._too_many_requests()
        self._bucket.take()
        chat.bucket.take()

    def _is_allowed(self, update: dict[str, Any]) -> bool:
        kind = next(key for key in update if key != "update_id")
        if self._allowed_updates is None:
            return kind not in NOT_SENT_BY_DEFAULT
        return kind in self._allowed_updates

    @staticmethod
    def _commands_key(scope: Any, language_code: Any) -> tuple[str, str]:
        scope = scope or {"type": "default"}
        return json.dumps(scope, sort_keys=True), str(language_code or "")

    def _set_description(self, params: dict[str, Any], field: str, limit: int) -> bool:
        text = str(params.get(field) or "")
        if len(text) > limit:
            raise ApiError(400, f"Bad Request: {field.replace('_', ' ')} is too long")
        key = (field, str(params.get("language_code") or ""))
        if text:
            self.descriptions[key] = text
        else:
            self.descriptions.pop(key, None)
        return True

    def _get_description(self, params: dict[str, Any], field: str) -> dict[str, str]:
        key = (field, str(params.get("language_code") or ""))
        return {field: self.descriptions.get(key, "")}

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._closing.wait()


def _chat_id_of(body: dict[str, Any]) -> int | None:
    """The private chat an update comes from."""
    for kind in ("message", "my_chat_member"):
        if kind in body:
            return int(body[kind]["chat"]["id"])
    query = body.get("callback_query")
    if query is not None:
        return int(query["from"]["id"])
    return None
