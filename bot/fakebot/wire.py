"""Reading Bot API requests the way Telegram does: query, urlencoded form, multipart or JSON.

python-telegram-bot sends a form where strings travel as they are and every other value
(numbers, booleans, keyboards, entity lists) is JSON-encoded; with files it sends the same
fields as multipart parts.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import BodyPartReader, hdrs, web

from bot.fakebot.records import UploadedFile

# Parameters that are strings even when they look like JSON ("123", "true", "null").
_STRING_PARAMS = frozenset(
    {
        "text",
        "caption",
        "parse_mode",
        "callback_query_id",
        "inline_message_id",
        "business_connection_id",
        "description",
        "short_description",
        "name",
        "language_code",
        "action",
        "url",
        "secret_token",
        "file_id",
        "photo",
        "document",
        "emoji",
    }
)


def decode_value(name: str, raw: str) -> Any:
    """Turn one form value back into what the client meant."""
    if name in _STRING_PARAMS:
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        return raw


async def read_params(request: web.Request) -> dict[str, Any]:
    """Collect the parameters of a Bot API request, files as ``UploadedFile``."""
    params: dict[str, Any] = {name: decode_value(name, raw) for name, raw in request.query.items()}
    if not request.can_read_body:
        return params
    if request.content_type == "application/json":
        body = await request.json()
        if isinstance(body, dict):
            params.update(body)
    elif request.content_type == "multipart/form-data":
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader) or part.name is None:
                continue
            if part.filename is None:
                params[part.name] = decode_value(part.name, await part.text())
            else:
                params[part.name] = UploadedFile(
                    file_name=part.filename,
                    content=bytes(await part.read()),
                    content_type=part.headers.get(hdrs.CONTENT_TYPE),
                )
    else:
        form = await request.post()
        for name, raw in form.items():
            if isinstance(raw, str):
                params[name] = decode_value(name, raw)
    return params


def utf16_length(text: str) -> int:
    """Return the length Telegram uses for entity offsets (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


def ok(result: Any) -> web.Response:
    """Answer a successful Bot API call."""
    return web.json_response({"ok": True, "result": result})


def failure(code: int, description: str, parameters: dict[str, Any] | None = None) -> web.Response:
    """Answer a refused Bot API call the way Telegram does."""
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=code)
