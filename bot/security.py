"""Encryption at rest and the keyed NIK hash, and keeping personal data out of logs."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives.ciphers import Cipher as Cipher_
from cryptography.hazmat.primitives.ciphers import algorithms, modes

from bot.config import ConfigError, Settings
from bot.core.nik import NIK_IN_TEXT
from bot.core.phone import PHONE_IN_TEXT

log = logging.getLogger(__name__)


class Cipher:
    """Fernet encryption of personal data and a keyed hash for duplicate lookups.

    During a key rotation (`old_keys` given) data is written under the first key and read
    under any of them, and lookups by hash try every key's hash (`nik_hashes`).
    """

    def __init__(self, key: bytes, old_keys: Sequence[bytes] = ()) -> None:
        try:
            self._fernets = [Fernet(k) for k in (key, *old_keys)]
            self._raw = [base64.urlsafe_b64decode(k) for k in (key, *old_keys)]
        except (ValueError, TypeError) as exc:
            raise ConfigError(
                "DATA_KEY: must be a Fernet key (create one with: python -m bot keygen)"
            ) from exc
        self._fernet = MultiFernet(self._fernets)
        # A separate key for hashing, so the hash reveals nothing about the encryption key.
        self._hash_keys = [hmac.new(raw, b"nik-hash", "sha256").digest() for raw in self._raw]
        self._hash_key = self._hash_keys[0]

    @property
    def rotating(self) -> bool:
        """Whether older keys are still accepted (a rotation is under way)."""
        return len(self._fernets) > 1

    def encrypt(self, value: dict[str, Any]) -> str:
        """Encrypt a JSON-serialisable mapping."""
        return self._fernet.encrypt(json.dumps(value, sort_keys=True).encode()).decode()

    def decrypt(self, token: str) -> dict[str, Any]:
        """Decrypt what `encrypt` made (under the current key or an older one)."""
        try:
            data = json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken as exc:
            raise ConfigError("DATA_KEY: does not decrypt the stored data (wrong key?)") from exc
        if not isinstance(data, dict):
            raise ValueError("encrypted payload is not a mapping")
        return data

    def encrypt_bytes(self, data: bytes) -> bytes:
        """Encrypt raw bytes (a broadcast's photo); the token is ASCII."""
        return self._fernet.encrypt(data)

    def decrypt_bytes(self, token: bytes) -> bytes:
        """Decrypt what `encrypt_bytes` made (under the current key or an older one)."""
        try:
            return self._fernet.decrypt(token)
        except InvalidToken as exc:
            raise ConfigError("DATA_KEY: does not decrypt the stored data (wrong key?)") from exc

    def renewed(self, token: str | bytes) -> str | bytes:
        """The same content under the current key (a rotation), as text or bytes as given."""
        try:
            fresh = self._fernet.rotate(token)
        except InvalidToken as exc:
            raise ConfigError("DATA_KEY: does not decrypt the stored data (wrong key?)") from exc
        return fresh.decode() if isinstance(token, str) else fresh

    def is_current(self, token: str | bytes) -> bool:
        """Whether a token was made under the current key (its MAC checks with that key)."""
        try:
            raw = base64.urlsafe_b64decode(token)
        except ValueError:
            return False
        signing = self._raw[0][:16]
        return len(raw) >= 73 and hmac.compare_digest(
            hmac.digest(signing, raw[:-32], "sha256"), raw[-32:]
        )

    def bulk_text_decryptor(self) -> Callable[[Sequence[str]], list[str]]:
        """`bulk_decryptor` for tokens of text (`encrypt_text`), not JSON documents."""
        return self._bulk(parse=False)

    def bulk_decryptor(self) -> Callable[[Sequence[str]], list[dict[str, Any]]]:
        """`decrypt` for many tokens at once (exports): the same checks, a fraction of the cost.

        Fernet is AES-128-CBC with an HMAC-SHA256 over the whole token. `Fernet.decrypt`
        builds a new cipher context for every token; here one ECB context per key serves
        them all, in one call per batch, and CBC is undone by hand (each plaintext block is
        the ECB-decrypted block XOR the ciphertext block before it), which is exactly CBC
        decryption. Every MAC is checked first, in constant time, as Fernet does, so nothing
        unauthenticated is decrypted; during a rotation each key is tried in turn. The JSON
        documents of a batch are parsed in one call too.
        """
        return self._bulk(parse=True)

    def _bulk(self, *, parse: bool) -> Callable[[Sequence[str]], list[Any]]:
        keys = [
            (raw[:16], Cipher_(algorithms.AES(raw[16:]), modes.ECB()).decryptor())
            for raw in self._raw
        ]
        digest, compare, a2b, loads = (
            hmac.digest,
            hmac.compare_digest,
            binascii.a2b_base64,
            json.loads,
        )

        def authentic(token: str) -> tuple[bytes, int]:
            """The token's bytes and the index of the key whose MAC it carries."""
            try:
                # str.translate looks every character up: replace is several times cheaper.
                raw = a2b(token.replace("-", "+").replace("_", "/"))
            except (ValueError, TypeError, AttributeError):  # binascii.Error is a ValueError
                raw = b""
            if len(raw) >= 73 and raw[0] == 0x80:
                body, mac = raw[:-32], raw[-32:]
                for index, (signing, _block) in enumerate(keys):
                    if compare(digest(signing, body, "sha256"), mac):
                        return raw, index
            raise ConfigError("DATA_KEY: does not decrypt the stored data (wrong key?)")

        def under_one_key(tokens: Sequence[str]) -> tuple[list[bytes], int] | None:
            """Every token's bytes and the key all their MACs check with, if there is one.

            The MACs of the whole batch are compared at once (in constant time, as one
            string): a batch usually holds only tokens of the current key.
            """
            try:
                raws = [a2b(token.replace("-", "+").replace("_", "/")) for token in tokens]
            except (ValueError, TypeError, AttributeError):
                return None
            if min(map(len, raws)) < 73 or any(raw[0] != 0x80 for raw in raws):
                return None
            carried = b"".join([raw[-32:] for raw in raws])
            for index, (signing, _block) in enumerate(keys):
                made = b"".join([digest(signing, raw[:-32], "sha256") for raw in raws])
                if compare(made, carried):
                    return raws, index
            return None

        def decrypt(tokens: Sequence[str]) -> list[Any]:
            if not tokens:
                return []
            found = under_one_key(tokens)
            if found is None:
                # A malformed or foreign token (its own error), or a batch written under
                # several keys during a rotation: token by token, one key at a time.
                checked = [authentic(token) for token in tokens]
                if len({index for _raw, index in checked}) > 1:
                    return [decrypt([token])[0] for token in tokens]
                found = [raw for raw, _index in checked], checked[0][1]
            raws, index = found
            block = keys[index][1]
            # Version (1), time (8), IV (16), ciphertext, MAC (32).
            encrypted = b"".join([raw[25:-32] for raw in raws])
            chained = b"".join([raw[9:-48] for raw in raws])
            plain = (
                int.from_bytes(block.update(encrypted), "big") ^ int.from_bytes(chained, "big")
            ).to_bytes(len(encrypted), "big")
            documents, start = [], 0
            for raw in raws:
                end = start + len(raw) - 57
                documents.append(plain[start : end - plain[end - 1]])
                start = end
            if not parse:
                return [document.decode() for document in documents]
            data: list[dict[str, Any]] = loads(b"[" + b",".join(documents) + b"]")
            if len(data) != len(documents):
                # Only a document that is not one JSON value can do that: parse each alone.
                data = [loads(document) for document in documents]
            for value in data:
                if not isinstance(value, dict):
                    raise ValueError("encrypted payload is not a mapping")
            return data

        return decrypt

    def nik_hash(self, nik: str) -> str:
        """Keyed hash of a NIK: equal NIKs give equal hashes, the NIK cannot be read back."""
        return self.keyed_hash(nik)

    def keyed_hash(self, value: str) -> str:
        """Keyed hash of a secret value (NIK, claim code) for lookups without storing it."""
        return hmac.new(self._hash_key, value.encode(), hashlib.sha256).hexdigest()

    def nik_hashes(self, nik: str) -> list[str]:
        """The NIK's hash under every key accepted now (lookups during a rotation)."""
        return self.keyed_hashes(nik)

    def keyed_hashes(self, value: str) -> list[str]:
        """`keyed_hash` under every key accepted now, the current key's first."""
        return [hmac.new(k, value.encode(), hashlib.sha256).hexdigest() for k in self._hash_keys]


def generate_key() -> str:
    """A new random DATA_KEY."""
    return Fernet.generate_key().decode()


def key_file_of(settings: Settings) -> Path | None:
    """Where the key lives when DATA_KEY is unset: beside the embedded database."""
    db_path = settings.sqlite_path
    return None if db_path is None else db_path.with_name(db_path.stem + ".key")


def configured_cipher(settings: Settings) -> Cipher | None:
    """The cipher from DATA_KEY or the existing key file; None when the key file is missing."""
    old_keys = settings.data_key_old.get_secret_value() if settings.data_key_old else ""
    old = [k.strip().encode() for k in old_keys.split(",") if k.strip()]
    if settings.data_key is not None:
        return Cipher(settings.data_key.get_secret_value().encode(), old)
    key_path = key_file_of(settings)
    if key_path is None:
        raise ConfigError("DATA_KEY: must be set when the database is not the embedded SQLite file")
    if key_path.exists():
        return Cipher(key_path.read_bytes().strip(), old)
    return None


def create_key_file(settings: Settings) -> Cipher:
    """Make a new key file beside the embedded database (only for a database without data)."""
    key_path = key_file_of(settings)
    if key_path is None:
        raise ConfigError("DATA_KEY: must be set when the database is not the embedded SQLite file")
    key_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(generate_key())
    log.warning(
        "DATA_KEY is not set: created the key file %s (mode 0600). Back it up: without it the "
        "stored personal data cannot be read.",
        key_path,
    )
    return Cipher(key_path.read_bytes().strip())


def load_cipher(settings: Settings) -> Cipher:
    """The cipher from DATA_KEY, or from a key file beside the embedded database (made if
    missing). Start-up uses `configured_cipher` instead, to look at the database first."""
    return configured_cipher(settings) or create_key_file(settings)


_TOKEN_LIKE = re.compile(r"\d{5,}:[A-Za-z0-9_-]{20,}")


def redact(text: str) -> str:
    """Replace tokens, and NIKs and phone numbers in every form their parsers accept."""
    text = _TOKEN_LIKE.sub("[token]", text)
    text = NIK_IN_TEXT.sub("[nik]", text)
    return PHONE_IN_TEXT.sub("[phone]", text)


class RedactingFilter(logging.Filter):
    """A logging filter that removes NIKs, phone numbers and tokens from every record."""

    def __init__(self, secrets: list[str] | None = None) -> None:
        super().__init__()
        self._secrets = [s for s in (secrets or []) if s]

    def _clean(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "[secret]")
        return redact(text)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self._clean(record.getMessage())
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = self._clean(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


# Libraries that log whole requests and answers (python-telegram-bot: every Bot API call
# with its parameters and result, so names, texts and profiles; httpx: URLs, which hold the
# token), or SQL with its parameters and rows (SQLAlchemy, aiosqlite), below WARNING. Their
# payloads are free text that no pattern can clean, so those records are not written at all.
LIBRARIES = (
    "telegram",
    "httpx",
    "httpcore",
    "sqlalchemy",
    "aiosqlite",
    "asyncpg",
    "alembic",
    "uvicorn",
    "aiohttp",
    "asyncio",
    "hpack",
    "PIL",
    "matplotlib",
)
OWN_LOGGER = "bot"


class LibraryFilter(logging.Filter):
    """Let through the bot's own records at every level, other loggers' from WARNING up."""

    def filter(self, record: logging.LogRecord) -> bool:
        own = record.name == OWN_LOGGER or record.name.startswith(OWN_LOGGER + ".")
        return own or record.levelno >= logging.WARNING


def log_filters(secrets: list[str]) -> list[logging.Filter]:
    """The filters every log handler of the bot carries, in order."""
    return [LibraryFilter(), RedactingFilter(secrets)]


def quiet_libraries() -> None:
    """Keep the libraries' payload records from being made at all (see `LIBRARIES`)."""
    for name in LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)


class OneLineFormatter(logging.Formatter):
    """A record as one short line that points to the log file for the details."""

    def __init__(self, details: Path) -> None:
        super().__init__()
        self._details = details

    def format(self, record: logging.LogRecord) -> str:
        """Level and first line of the message; tracebacks stay in the file."""
        first = record.getMessage().partition("\n")[0]
        return f"[{record.levelname.lower()}] {first} (details: {self._details})"


class JsonFormatter(logging.Formatter):
    """A record as one JSON object per line (time, level, logger, message, traceback)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        # The redacting filter has already turned any traceback into (cleaned) text.
        if record.exc_text:
            entry["traceback"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(
    level: str, secrets: list[str], *, log_file: Path | None = None, log_format: str = "text"
) -> None:
    """Log with personal data and secrets removed: to stderr, or to `log_file`.

    With a log file (the terminal chat), only errors reach stderr, one line each, so records
    do not land between the lines of the conversation. `log_format` "json" writes one JSON
    object per line, for a log collector.
    """
    full: logging.Formatter = (
        JsonFormatter()
        if log_format == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    handlers: list[logging.Handler] = []
    if log_file is None:
        handlers.append(logging.StreamHandler())
        handlers[0].setFormatter(full)
    else:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        to_file = logging.FileHandler(log_file, encoding="utf-8")
        to_file.setFormatter(full)
        on_screen = logging.StreamHandler()
        on_screen.setLevel(logging.ERROR)
        on_screen.setFormatter(OneLineFormatter(log_file))
        handlers += [to_file, on_screen]
    for handler in handlers:
        for log_filter in log_filters(secrets):
            handler.addFilter(log_filter)
    root = logging.getLogger()
    root.handlers[:] = handlers
    root.setLevel(level.upper())
    quiet_libraries()
