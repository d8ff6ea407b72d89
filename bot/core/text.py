"""Text people type, read once before any question looks at it.

Telegram delivers whatever a keyboard or a copy-paste produced. Before an answer is parsed it
is NFKC-normalised, so fullwidth and mathematical letters become plain ones ("Ｍａｄｅ" and
"𝐌𝐚𝐝𝐞" are "Made") and fullwidth digits become digits. Marks that only steer the writing
direction are dropped: they carry nothing, and copied phone numbers often hold them. What
would make two answers look alike while they differ is refused with one sentence: control
characters, invisible characters and blank "letters" (a name of two U+3164 looks empty), and
Latin mixed with look-alike letters of another alphabet in one answer ("Mаde" with a Cyrillic
а, or "Ι Made" with a Greek Iota standing for the I).
"""

from __future__ import annotations

import unicodedata

from bot.core.errors import InvalidInput

# Direction marks, embeddings and isolates: they change how text is drawn, not what it says.
_DIRECTION_MARKS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
# Characters that are letters or symbols to Unicode but show nothing: Hangul fillers,
# the blank Braille pattern, the combining grapheme joiner, Khmer inherent vowels.
_BLANKS = frozenset("\u115f\u1160\u3164\uffa0\u2800\u034f\u17b4\u17b5")
# Kept although invisible: the zero-width joiner builds emoji (👨‍👩‍👧); the answer's own
# rules refuse it where it does not belong.
_JOINER = "\u200d"
# Alphabets with letters that look like Latin ones (а/a, ο/o, Н/H, ...).
_LOOKALIKE_SCRIPTS = frozenset({"LATIN", "CYRILLIC", "GREEK", "ARMENIAN", "CHEROKEE", "COPTIC"})
_KEPT_CONTROLS = frozenset("\t\n\r")


def read_typed(text: str) -> str:
    """`text` NFKC-normalised and without direction marks; InvalidInput if it hides something."""
    if any(unicodedata.category(ch) == "Cs" for ch in text):
        # A lone surrogate: not text at all, and NFKC cannot read it.
        raise InvalidInput("text.error.control")
    value = "".join(ch for ch in unicodedata.normalize("NFKC", text) if ch not in _DIRECTION_MARKS)
    for ch in value:
        category = unicodedata.category(ch)
        if category == "Cc" and ch not in _KEPT_CONTROLS:
            raise InvalidInput("text.error.control")
        if (category == "Cf" and ch != _JOINER) or ch in _BLANKS:
            raise InvalidInput("text.error.invisible")
    scripts = {_script(ch) for ch in value if ch.isalpha()}
    if len(scripts & _LOOKALIKE_SCRIPTS) > 1:
        raise InvalidInput("text.error.mixed_script")
    return value


def _script(letter: str) -> str:
    """The alphabet a letter belongs to, as its Unicode name begins ("LATIN", "CYRILLIC")."""
    return unicodedata.name(letter, "").split(" ", 1)[0]
