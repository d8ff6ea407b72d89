"""Encryption at rest, the keyed NIK hash, the key file, and logs free of personal data."""

from __future__ import annotations

import base64
import hmac
import json
import logging
import re
import stat
from datetime import date
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from hypothesis import assume, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from bot.config import ConfigError, load_settings
from bot.core.errors import InvalidInput
from bot.core.nik import parse_nik
from bot.core.phone import normalise_phone
from bot.security import (
    Cipher,
    JsonFormatter,
    RedactingFilter,
    generate_key,
    load_cipher,
    log_filters,
    redact,
)


def test_answers_round_trip_and_are_unreadable_at_rest() -> None:
    """Encrypted answers come back intact and do not show the NIK."""
    cipher = Cipher(generate_key().encode())
    token = cipher.encrypt({"nik": "5102051708850003", "phone": "+6281234567890"})
    assert "5102051708850003" not in token
    assert cipher.decrypt(token)["phone"] == "+6281234567890"


def test_the_nik_hash_is_stable_and_keyed() -> None:
    """The same NIK hashes the same under one key and differently under another."""
    one, two = Cipher(generate_key().encode()), Cipher(generate_key().encode())
    assert one.nik_hash("5102051708850003") == one.nik_hash("5102051708850003")
    assert one.nik_hash("5102051708850003") != two.nik_hash("5102051708850003")
    assert "5102051708850003" not in one.nik_hash("5102051708850003")


def test_a_wrong_key_is_a_configuration_error() -> None:
    """A DATA_KEY that is not a Fernet key stops start-up naming DATA_KEY."""
    with pytest.raises(ConfigError, match=r"^DATA_KEY:"):
        Cipher(b"not-a-key")


def test_without_data_key_a_private_key_file_is_made(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The embedded database gets a 0600 key file beside it, with a warning, reused later."""
    settings = load_settings(_env_file=None, database_url=f"sqlite+aiosqlite:///{tmp_path}/bot.db")
    with caplog.at_level(logging.WARNING):
        first = load_cipher(settings)
    key_file = tmp_path / "bot.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert any("DATA_KEY" in r.getMessage() for r in caplog.records)
    second = load_cipher(settings)
    assert first.decrypt(second.encrypt({"a": 1})) == {"a": 1}


def test_postgresql_needs_a_data_key() -> None:
    """On PostgreSQL there is no key file: DATA_KEY must be given."""
    settings = load_settings(_env_file=None, database_url="postgresql+asyncpg://u@h/db")
    with pytest.raises(ConfigError, match=r"^DATA_KEY:"):
        load_cipher(settings)


@pytest.mark.parametrize(
    "text",
    [
        "NIK 5102051708850003 typed",
        "phone 081234567890",
        "phone +62 812-3456-7890 shared",
        "contact 6281234567890",
        "url https://api.telegram.org/bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/getMe",
    ],
)
def test_logs_never_show_nik_phone_or_token(text: str) -> None:
    """Redaction removes NIK-, phone- and token-shaped strings."""
    cleaned = redact(text)
    for secret in (
        "5102051708850003",
        "081234567890",
        "812-3456-7890",
        "6281234567890",
        "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw",
    ):
        assert secret not in cleaned


def test_the_filter_cleans_arguments_and_tracebacks() -> None:
    """A record's %-arguments and exception text are redacted as well."""
    record = logging.LogRecord(
        "x", logging.ERROR, __file__, 1, "nik=%s", ("5102051708850003",), None
    )
    try:
        raise ValueError("bad 081234567890")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    RedactingFilter(["SECRET-TOKEN"]).filter(record)
    assert "5102051708850003" not in record.getMessage()
    assert record.exc_text is not None and "081234567890" not in record.exc_text


def test_json_log_lines_are_one_object_each_and_redacted() -> None:
    """LOG_FORMAT=json: every record is one line of JSON, with personal data removed."""
    record = logging.LogRecord(
        "bot.x", logging.ERROR, __file__, 1, "chat %s sent NIK %s", (7, "5102051708850003"), None
    )
    try:
        raise ValueError("phone 081234567890\nsecond line")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    RedactingFilter([]).filter(record)
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "error" and entry["logger"] == "bot.x"
    assert entry["message"].startswith("chat 7 sent NIK ")
    assert "5102051708850003" not in line and "081234567890" not in line
    assert "ValueError" in entry["traceback"]
    assert entry["time"].endswith("+00:00")


def test_the_bulk_decryptor_reads_what_encrypt_wrote_and_refuses_the_rest() -> None:
    """Exports decrypt a million rows with it: same answers as Fernet, same refusals."""
    key = generate_key().encode()
    cipher = Cipher(key)
    values = [{"nik": "5102051708850003", "n": n, "name": "Ni Luh Ayu " * n} for n in range(40)]
    tokens = [cipher.encrypt(v) for v in values]
    decrypt = cipher.bulk_decryptor()
    assert decrypt(tokens) == values == [cipher.decrypt(t) for t in tokens]
    assert [decrypt([t])[0] for t in tokens] == values
    assert decrypt([]) == []
    other = Cipher(generate_key().encode()).bulk_decryptor()
    flipped = tokens[3][:40] + ("A" if tokens[3][40] != "A" else "B") + tokens[3][41:]
    for bad, reader in ((tokens[0], other), (flipped, decrypt), ("not a token", decrypt)):
        with pytest.raises(ConfigError, match="DATA_KEY"):
            reader([bad])
        # One bad token refuses its whole batch.
        with pytest.raises(ConfigError, match="DATA_KEY"):
            reader([*tokens[:5], bad])
    with pytest.raises(ValueError, match="not a mapping"):
        decrypt([Fernet(key).encrypt(b"[1, 2]").decode()])
    # A token whose MAC checks but whose version is not Fernet's is refused too.
    raw = base64.urlsafe_b64decode(tokens[1])
    body = b"\x81" + raw[1:-32]
    signed = body + hmac.digest(base64.urlsafe_b64decode(key)[:16], body, "sha256")
    with pytest.raises(ConfigError, match="DATA_KEY"):
        decrypt([*tokens[:3], base64.urlsafe_b64encode(signed).decode()])


def test_during_a_rotation_both_keys_read_and_only_the_new_one_writes() -> None:
    old, new = generate_key().encode(), generate_key().encode()
    before = Cipher(old)
    token = before.encrypt({"nik": "5102051708850003"})
    both = Cipher(new, [old])
    assert both.rotating and not before.rotating
    assert both.decrypt(token) == {"nik": "5102051708850003"}
    # A batch written under the old key only, and one partly under each, as during a rotation.
    assert both.bulk_decryptor()([token, token]) == [{"nik": "5102051708850003"}] * 2
    mixed = [token, both.encrypt({"nik": "5171015107926183"}), token]
    assert both.bulk_decryptor()(mixed) == [
        {"nik": "5102051708850003"},
        {"nik": "5171015107926183"},
        {"nik": "5102051708850003"},
    ]
    assert not both.is_current(token)
    fresh = both.encrypt({"nik": "5102051708850003"})
    assert both.is_current(fresh)
    assert Cipher(new).decrypt(fresh) == {"nik": "5102051708850003"}
    # Lookups find a NIK by its old hash as well as its new one.
    assert both.nik_hashes("5102051708850003") == [
        Cipher(new).nik_hash("5102051708850003"),
        before.nik_hash("5102051708850003"),
    ]
    with pytest.raises(ConfigError):
        Cipher(new).decrypt(token)
    with pytest.raises(ConfigError):
        Cipher(new).bulk_decryptor()([token])


# ---------------------------------------------------------------- every form the parsers take

NIK_FORMS = [
    "5102051708850003",
    "5102 0517 0885 0003",
    "5102-0517-0885-0003",
    "5102.0517.0885.0003",
    "51.02.05.170885.0003",
    "5102 - 0517 - 0885 - 0003",
    "5102\t0517\n0885 0003",
]
PHONE_FORMS = [
    "081234567890",
    "0812.3456.7890",
    "0812-3456-7890",
    "0812 3456 7890",
    "(0812) 3456 7890",
    "(0812)34567890",
    "0812/3456/7890",
    "+62 812-3456-7890",
    "+62 (812) 3456 7890",
    "+6281234567890",
    "62 812 3456 7890",
    "6281234567890",
    "0062 812 3456 7890",
    "+62-812.3456.7890",
    "0813 111 222",
]


@pytest.mark.parametrize("typed", NIK_FORMS)
def test_every_nik_form_the_parser_accepts_is_redacted(typed: str) -> None:
    assert parse_nik(typed, known_provinces={"51"}, today=date(2026, 1, 1)).nik
    cleaned = redact(f"answer: {typed}. next")
    assert not re.search(r"\d", cleaned), cleaned


@pytest.mark.parametrize("typed", PHONE_FORMS)
def test_every_phone_form_the_parser_accepts_is_redacted(typed: str) -> None:
    assert normalise_phone(typed).startswith("+628")
    cleaned = redact(f"answer: {typed}. next")
    assert not re.search(r"\d", cleaned), cleaned


_SEPARATORS = st.sampled_from([" ", "-", ".", "", "", "", "  ", " - ", "/", "(", ")"])


@hsettings(max_examples=300, deadline=None)
@given(
    prefix=st.sampled_from(["0", "62", "+62", "0062", "+62 ", "(0", "62 "]),
    national=st.from_regex(r"8[1-9][0-9]{7,10}", fullmatch=True),
    separators=st.lists(_SEPARATORS, min_size=13, max_size=13),
)
def test_any_phone_the_parser_accepts_is_redacted(
    prefix: str, national: str, separators: list[str]
) -> None:
    typed = prefix + "".join(d + s for d, s in zip(national, separators, strict=False)).rstrip(
        " -./("
    )
    try:
        normalise_phone(typed)
    except InvalidInput:
        assume(False)
    cleaned = redact(f"text {typed} text")
    assert not re.search(r"\d", cleaned), (typed, cleaned)


@hsettings(max_examples=300, deadline=None)
@given(
    serial=st.integers(1, 9999),
    separators=st.lists(
        st.sampled_from(["", "", " ", "-", ".", "  ", " . "]), min_size=15, max_size=15
    ),
)
def test_any_nik_the_parser_accepts_is_redacted(serial: int, separators: list[str]) -> None:
    digits = f"510205170885{serial:04d}"
    typed = digits[0] + "".join(s + d for s, d in zip(separators, digits[1:], strict=True))
    parse_nik(typed, known_provinces={"51"}, today=date(2026, 1, 1))
    cleaned = redact(f"NIK {typed}!")
    assert not re.search(r"\d", cleaned), (typed, cleaned)


def test_library_payload_records_are_dropped_and_their_warnings_kept() -> None:
    """python-telegram-bot, httpx and the database drivers log whole requests and SQL
    parameters below WARNING: those records never reach a handler; the bot's own do."""
    filters = log_filters(["SECRET-TOKEN"])

    def kept(name: str, level: int, message: str) -> bool:
        record = logging.LogRecord(name, level, __file__, 1, message, None, None)
        return all(f.filter(record) for f in filters)

    payload = "Calling Bot API endpoint `sendMessage` with parameters `{'text': 'Wayan'}`"
    assert not kept("telegram.Bot", logging.DEBUG, payload)
    assert not kept("telegram.ext.Application", logging.INFO, payload)
    assert not kept("httpx", logging.INFO, "HTTP Request: POST https://x/botSECRET-TOKEN/getMe")
    assert not kept("aiosqlite", logging.DEBUG, "executing INSERT ... ('Wayan',)")
    assert not kept("sqlalchemy.engine.Engine", logging.INFO, "[generated] ('Wayan',)")
    assert not kept("root", logging.INFO, "anything")
    assert kept("telegram.Bot", logging.WARNING, "Network error")
    assert kept("bot.services.delivery", logging.DEBUG, "Sending broadcast 1 to chat 2")


def test_secrets_are_removed_from_tracebacks_too() -> None:
    record = logging.LogRecord("bot.x", logging.ERROR, __file__, 1, "failed", None, None)
    try:
        raise RuntimeError("The token `SECRET-TOKEN` was rejected by the server.")
    except RuntimeError:
        import sys

        record.exc_info = sys.exc_info()
    RedactingFilter(["SECRET-TOKEN"]).filter(record)
    assert record.exc_text is not None and "SECRET-TOKEN" not in record.exc_text
