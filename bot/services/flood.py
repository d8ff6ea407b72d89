"""What a person is told when they send faster than the flood limit allows."""

from __future__ import annotations

from bot.core.messages import Reply
from bot.i18n import Translator


def flood_warning(t: Translator) -> Reply:
    """The one polite answer before further messages are dropped for a while."""
    return Reply(t("flood.slow_down"))
