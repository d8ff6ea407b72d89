"""User actions over HTTP, so a driver in another process (a benchmark) can play the users.

Routes on the fake's own server:
``POST /_fake/users/{user_id}/text`` ``{"text": ...}``;
``POST /_fake/users/{user_id}/contact`` ``{"phone_number": ..., "user_id": ...}`` (``user_id``
left out: the user's own contact; ``null``: a contact without a Telegram account);
``POST /_fake/users/{user_id}/press`` ``{"label": ..., "message_id": ...}`` or
``{"data": ..., "message_id": ...}``;
``GET /_fake/chats/{chat_id}/messages``: the bot's messages in that chat.
"""

from __future__ import annotations

from typing import Any, Protocol

from aiohttp import web

from bot.fakebot.records import BotMessage
from bot.fakebot.user import OWN_ID, FakeUser
from bot.fakebot.wire import failure


class FakeTelegram(Protocol):
    """What the driver needs of the fake Telegram (the server provides it)."""

    def user(self, user_id: int) -> FakeUser: ...

    def messages(self, chat_id: int) -> list[BotMessage]: ...


def driver_routes(fake: FakeTelegram) -> list[web.RouteDef]:
    """Return the ``/_fake`` routes acting on ``fake``."""

    async def user_action(request: web.Request) -> web.Response:
        try:
            user = fake.user(int(request.match_info["user_id"]))
            body = await request.json() if request.can_read_body else {}
            action = request.match_info["action"]
            if action not in _ACTIONS:
                return failure(404, f"Not Found: no user action {action!r}")
            await _ACTIONS[action](fake, user, body)
        except KeyError as missing:
            return failure(400, f"Bad Request: missing field {missing}")
        except (TypeError, ValueError) as error:
            return failure(400, f"Bad Request: {error}")
        except LookupError as error:
            return failure(404, f"Not Found: {error}")
        return web.json_response({"ok": True})

    async def chat_messages(request: web.Request) -> web.Response:
        try:
            chat_id = int(request.match_info["chat_id"])
        except ValueError:
            return failure(400, "Bad Request: chat_id must be a number")
        return web.json_response([message.summary() for message in fake.messages(chat_id)])

    return [
        web.post("/_fake/users/{user_id}/{action}", user_action),
        web.get("/_fake/chats/{chat_id}/messages", chat_messages),
    ]


async def _text(fake: FakeTelegram, user: FakeUser, body: dict[str, Any]) -> None:
    await user.send_text(str(body["text"]))


async def _contact(fake: FakeTelegram, user: FakeUser, body: dict[str, Any]) -> None:
    contact_id = body.get("user_id", OWN_ID)
    if contact_id is not None and contact_id is not OWN_ID:
        contact_id = int(contact_id)
    await user.send_contact(str(body["phone_number"]), user_id=contact_id)


async def _press(fake: FakeTelegram, user: FakeUser, body: dict[str, Any]) -> None:
    if "data" in body:
        await user.press_data(str(body["data"]), message_id=int(body["message_id"]))
        return
    message: BotMessage | None = None
    if body.get("message_id") is not None:
        message_id = int(body["message_id"])
        message = next((m for m in fake.messages(user.chat_id) if m.message_id == message_id), None)
        if message is None:
            raise LookupError(f"the bot has no message {message_id} in this chat")
    await user.press(str(body["label"]), message=message)


_ACTIONS = {"text": _text, "contact": _contact, "press": _press}
