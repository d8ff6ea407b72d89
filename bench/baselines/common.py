"""What both baseline bots share: an application built from the environment, run by polling."""

from __future__ import annotations

import os
from typing import Any

from telegram import Update
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder, BasePersistence


def build_application(
    persistence: BasePersistence[Any, Any, Any] | None = None,
) -> Application[Any, Any, Any, Any, Any, Any]:
    """An application talking to the Bot API named by the environment."""
    builder = ApplicationBuilder().token(os.environ["TELEGRAM_BOT_TOKEN"])
    base_url = os.environ.get("TELEGRAM_API_BASE_URL")
    if base_url:
        builder = builder.base_url(base_url).base_file_url(
            base_url.removesuffix("/bot") + "/file/bot"
        )
    if os.environ.get("BASELINE_RATE_LIMITER") == "1":
        # The limiter changes the builder's bot type parameter, which a reassignment cannot say.
        builder = builder.rate_limiter(AIORateLimiter())  # type: ignore[arg-type]
    if persistence is not None:
        builder = builder.persistence(persistence)
    return builder.build()


def serve(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """Poll until SIGINT or SIGTERM, as PTB's examples do."""
    application.run_polling(allowed_updates=Update.ALL_TYPES, poll_interval=0.0)
