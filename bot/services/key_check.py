"""Start-up's proof that the data key opens the data already stored.

A different DATA_KEY, or a key file lost and made anew, would not stop the bot by itself: it
would fail later, on every message of a person with a draft, miss a NIK registered twice (its
hash differs under another key) and break exports. So before anything is served the key must
open a small value encrypted under it when the database first met it (`key_check`). A
database older than that value is tried on one stored row of each encrypted table instead,
and then gets the value. Without DATA_KEY and without the key file, a new key file is made
only for a database that holds nothing encrypted yet.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import ConfigError, Settings
from bot.db.models import Application, InboxUpdate, KeyCheck, OutboxMessage, StaffRequest
from bot.security import Cipher, create_key_file, key_file_of

CHECK_ID = 1
CHECK_VALUE = {"check": "bebas-cemas"}
# Where personal data is stored encrypted, one whole token per value.
ENCRYPTED = (
    Application.answers_enc,
    InboxUpdate.payload,
    OutboxMessage.payload,
    StaffRequest.text_enc,
)


async def stored_tokens(session: AsyncSession) -> list[str]:
    """The check value, or (a database older than it) one stored token of each table."""
    check = await session.scalar(select(KeyCheck.token).where(KeyCheck.id == CHECK_ID))
    if check is not None:
        return [check]
    tokens = []
    for column in ENCRYPTED:
        token = await session.scalar(select(column).where(column.is_not(None)).limit(1))
        if token:
            tokens.append(str(token))
    return tokens


def opens(cipher: Cipher, token: str) -> bool:
    """Whether the key (or, during a rotation, one of the keys) opens a stored token."""
    try:
        cipher.decrypt(token)
    except ConfigError:
        return False
    except ValueError:
        return True  # it opened; the content is simply not a mapping
    return True


async def verified_cipher(
    session: AsyncSession, settings: Settings, cipher: Cipher | None
) -> Cipher:
    """The cipher once it is shown to open the stored data; ConfigError in one line if not.

    `cipher` is the configured one (DATA_KEY or the key file), None when there is no key file.
    """
    tokens = await stored_tokens(session)
    key_file = key_file_of(settings)
    if cipher is None:
        if tokens:
            raise ConfigError(
                f"{key_file}: not found, but the database holds data encrypted with that key; "
                "put the key file back or set DATA_KEY to its key (a new key would not open "
                "the data)"
            )
        cipher = create_key_file(settings)
    if not all(opens(cipher, token) for token in tokens):
        source = "DATA_KEY" if settings.data_key is not None else f"The key file {key_file}"
        raise ConfigError(
            f"{source}: does not open the data already stored in the database (another key "
            "wrote it); start with the key the data was written with"
        )
    if await session.get(KeyCheck, CHECK_ID) is None:
        session.add(KeyCheck(id=CHECK_ID, token=cipher.encrypt(CHECK_VALUE)))
    return cipher
