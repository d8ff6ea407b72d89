"""The one error type the core raises for a user's bad answer."""

from __future__ import annotations

from typing import Any


class InvalidInput(ValueError):
    """A user's answer that cannot be accepted.

    ``key`` is a message id in ``locales/`` that explains, in one sentence, what is
    expected; ``params`` fill its placeholders (``%(name)s`` style).
    """

    def __init__(self, key: str, **params: Any) -> None:
        super().__init__(key)
        self.key = key
        self.params = params
