"""PTB's echo bot: every text comes back as it was sent."""

from __future__ import annotations

from telegram import Update
from telegram.ext import ContextTypes, MessageHandler, filters

from bench.baselines.common import build_application, serve


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Send the text back."""
    message = update.effective_message
    if message is not None and message.text:
        await message.reply_text(message.text)


def main() -> None:
    """Run the echo bot until it is stopped."""
    application = build_application()
    application.add_handler(MessageHandler(filters.TEXT, echo))
    serve(application)


if __name__ == "__main__":
    main()
