"""Settings: defaults, and one clear line naming the setting when a value is wrong."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import ConfigError, load_settings


def test_defaults_serve_the_denpasar_branch() -> None:
    """Without any setting the bot serves the five regencies on the embedded database."""
    settings = load_settings(_env_file=None)
    assert settings.branch_regencies == ["51.71", "51.03", "51.08", "51.01", "51.02"]
    assert settings.database_url == "sqlite+aiosqlite:///data/bot.db"
    assert settings.default_language == "id"
    assert str(settings.tz) == "Asia/Makassar"
    assert settings.rates.jkm_flat == 6800


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("BRANCH_REGENCIES", "51.71,Denpasar"),
        ("BRANCH_REGENCIES", ""),
        ("ADMIN_TELEGRAM_IDS", "12,abc"),
        ("DEFAULT_LANGUAGE", "fr"),
        ("TIMEZONE", "Bali/Denpasar"),
        ("DATABASE_URL", "mysql://localhost/db"),
        ("TELEGRAM_API_BASE_URL", "ftp://example"),
        ("MIN_AGE", "-1"),
        ("DRAFT_RETENTION_DAYS", "nol"),
        ("WEBHOOK_URL", "http://bot.example.org/telegram"),
        ("WEBHOOK_SECRET", "rahasia dengan spasi"),
        ("WEBHOOK_SECRET", "x" * 257),
        ("WEBHOOK_PORT", "70000"),
    ],
)
def test_a_wrong_value_names_the_setting(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    """Each bad value becomes one ConfigError that starts with the setting's name."""
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings(_env_file=None)
    message = str(caught.value)
    assert message.startswith(f"{name}:")
    assert "\n" not in message


def test_empty_lines_of_the_example_file_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    """`TELEGRAM_BOT_TOKEN=` as in .env.example leaves the token unset."""
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "")
    monkeypatch.setenv("DATA_KEY", "")
    monkeypatch.setenv("TELEGRAM_API_BASE_URL", "")
    settings = load_settings(_env_file=None)
    assert settings.telegram_bot_token is None
    assert settings.data_key is None
    assert settings.telegram_api_base_url is None


def test_env_example_documents_every_setting() -> None:
    """Every field of Settings appears in .env.example."""
    from bot.config import Settings

    example = (Path(__file__).parent.parent / ".env.example").read_text()
    for field in Settings.model_fields:
        assert f"{field.upper()}=" in example, field


def test_the_command_line_stops_with_one_line(tmp_path: Path) -> None:
    """`python -m bot db upgrade` with a bad setting prints one line and exits with 2."""
    result = subprocess.run(
        [sys.executable, "-m", "bot", "db", "upgrade"],
        cwd=tmp_path,
        env={"TIMEZONE": "Nowhere/City", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "Configuration error: TIMEZONE: 'Nowhere/City' is not a known time zone"
    ]


def test_run_without_a_token_says_so(tmp_path: Path) -> None:
    """`python -m bot run` without TELEGRAM_BOT_TOKEN explains what is missing."""
    result = subprocess.run(
        [sys.executable, "-m", "bot", "run"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/b.db"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "TELEGRAM_BOT_TOKEN" in result.stderr


def test_a_webhook_takes_its_path_from_the_url_and_any_https_host() -> None:
    """The path the bot answers on is WEBHOOK_URL's; plain http only for a loopback test."""
    settings = load_settings(
        _env_file=None,
        webhook_url="https://bot.example.org/telegram/hook",
        webhook_secret="a-Z_09",
    )
    assert settings.webhook_path == "/telegram/hook"
    assert load_settings(_env_file=None, webhook_url="http://127.0.0.1:8080").webhook_path == "/"


def test_webhook_mode_without_its_url_or_secret_stops_with_one_line(tmp_path: Path) -> None:
    """`run --webhook` names the missing setting instead of starting."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "TELEGRAM_BOT_TOKEN": "123:abc",
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/bot.db",
    }
    command = [sys.executable, "-m", "bot", "run", "--webhook"]
    missing_url = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert missing_url.returncode == 2
    assert missing_url.stderr.startswith("Configuration error: WEBHOOK_URL:")
    env["WEBHOOK_URL"] = "https://bot.example.org/telegram"
    missing_secret = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert missing_secret.returncode == 2
    assert missing_secret.stderr.startswith("Configuration error: WEBHOOK_SECRET:")
