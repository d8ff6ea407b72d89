"""Translations from the gettext catalogs in `locales/`, chosen per user and per update."""

from __future__ import annotations

import gettext
import io
from functools import cache
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"
DOMAIN = "messages"
LANGUAGES = ("id", "en")
FALLBACK = "id"


@cache
def _catalog(language: str) -> gettext.GNUTranslations:
    """Compile `locales/<language>/LC_MESSAGES/messages.po` in memory (no .mo build step)."""
    po_path = LOCALES_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    with po_path.open("rb") as handle:
        catalog = read_po(handle, locale=language)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def catalog_keys(language: str) -> dict[str, str]:
    """Every message id of a language with its text (for checks and tests)."""
    po_path = LOCALES_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    with po_path.open("rb") as handle:
        catalog = read_po(handle, locale=language)
    return {str(m.id): str(m.string) for m in catalog if m.id}


# Texts added at run time on top of the catalogs (a plug-in's own questions, tests).
_ADDED: dict[str, dict[str, str]] = {language: {} for language in LANGUAGES}


def add_texts(language: str, texts: dict[str, str]) -> None:
    """Add texts to a language on top of its catalog (they win over the catalog's)."""
    _ADDED[language].update(texts)


def remove_texts(language: str, keys: list[str]) -> None:
    """Take texts added with `add_texts` away again."""
    for key in keys:
        _ADDED[language].pop(key, None)


class Translator:
    """Texts of one language; a missing text falls back to Bahasa Indonesia."""

    def __init__(self, language: str) -> None:
        self.language = language if language in LANGUAGES else FALLBACK
        self._primary = _catalog(self.language)
        self._fallback = _catalog(FALLBACK)

    def __call__(self, key: str, /, **params: Any) -> str:
        """The text for a message id, with `%(name)s` placeholders filled."""
        text = _ADDED[self.language].get(key) or self._primary.gettext(key)
        if text == key and self.language != FALLBACK:
            text = self._fallback.gettext(key)
        return text % params if params else text


@cache
def translator(language: str) -> Translator:
    """The shared translator of a language."""
    return Translator(language)


def pick_language(code: str | None, default: str) -> str:
    """Map Telegram's `language_code` (e.g. "en-US") onto a supported language."""
    if code:
        base = code.split("-")[0].lower()
        if base in LANGUAGES:
            return base
    return default
