"""Encryption at rest, the keyed NIK hash, the key file, and logs free of personal data."""

from __future__ import annotations

import json
import logging
import stat
from pathlib import Path

import pytest

from bot.config import ConfigError, load_settings
from bot.security import (
    Cipher,
    JsonFormatter,
    RedactingFilter,
    generate_key,
    load_cipher,
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
    cipher = Cipher(generate_key().encode())
    values = [{"nik": "5102051708850003", "n": n, "name": "Ni Luh Ayu " * n} for n in range(40)]
    tokens = [cipher.encrypt(v) for v in values]
    decrypt = cipher.bulk_decryptor()
    assert [decrypt(t) for t in tokens] == values == [cipher.decrypt(t) for t in tokens]
    other = Cipher(generate_key().encode()).bulk_decryptor()
    flipped = tokens[3][:40] + ("A" if tokens[3][40] != "A" else "B") + tokens[3][41:]
    for bad, reader in ((tokens[0], other), (flipped, decrypt), ("not a token", decrypt)):
        with pytest.raises(ConfigError, match="DATA_KEY"):
            reader(bad)


def test_during_a_rotation_both_keys_read_and_only_the_new_one_writes() -> None:
    old, new = generate_key().encode(), generate_key().encode()
    before = Cipher(old)
    token = before.encrypt({"nik": "5102051708850003"})
    both = Cipher(new, [old])
    assert both.rotating and not before.rotating
    assert both.decrypt(token) == {"nik": "5102051708850003"}
    assert both.bulk_decryptor()(token) == {"nik": "5102051708850003"}
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
        Cipher(new).bulk_decryptor()(token)
