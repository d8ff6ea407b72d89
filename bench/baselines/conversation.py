"""A 12-question registration form on a ConversationHandler with PicklePersistence.

The shape of python-telegram-bot's ``conversationbot.py`` and ``persistentconversationbot.py``:
``/start`` asks the first question, each answer is kept in ``user_data`` and the next question
is asked; three questions take an inline-button answer, which is acknowledged and turned into
the next question by editing the pressed message. Persistence is PTB's default: the pickle file
is written every minute and at shutdown.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import (
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    ConversationHandler,
    MessageHandler,
    PicklePersistence,
    filters,
)

from bench.baselines.common import build_application, serve


@dataclass(frozen=True)
class Question:
    """One question: where its answer is kept, what is asked, the buttons if any."""

    key: str
    prompt: str
    choices: tuple[str, ...] = ()
    pattern: str = r"\S"


QUESTIONS = (
    Question("name", "Siapa nama lengkap Anda (sesuai KTP)?"),
    Question("nik", "Berapa NIK Anda (16 angka)?", pattern=r"^\d{16}$"),
    Question("birth_date", "Tanggal lahir Anda (HH-BB-TTTT)?", pattern=r"^\d{2}-\d{2}-\d{4}$"),
    Question("gender", "Jenis kelamin?", choices=("Laki-laki", "Perempuan")),
    Question("phone", "Nomor HP Anda?", pattern=r"^[0-9+ -]{8,}$"),
    Question("village", "Desa atau kelurahan tempat tinggal Anda?"),
    Question("address", "Banjar atau alamat Anda?"),
    Question("occupation", "Pekerjaan Anda?", choices=("Petani", "Nelayan", "Pedagang")),
    Question("income", "Penghasilan per bulan (rupiah)?", pattern=r"^\d+$"),
    Question("heir_name", "Nama ahli waris?"),
    Question("heir_phone", "Nomor HP ahli waris?", pattern=r"^[0-9+ -]{8,}$"),
    Question("confirm", "Kirim pendaftaran ini?", choices=("Kirim", "Batal")),
)

Callback = Callable[[Update, ContextTypes.DEFAULT_TYPE], Coroutine[Any, Any, int]]


def question_markup(question: Question) -> InlineKeyboardMarkup | None:
    """The inline buttons of a question, one row."""
    if not question.choices:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(choice, callback_data=choice) for choice in question.choices]]
    )


def progress_text(index: int) -> str:
    """The question with its number."""
    return f"({index + 1}/{len(QUESTIONS)}) {QUESTIONS[index].prompt}"


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    """Start the form anew and ask the first question."""
    if context.user_data is not None:
        context.user_data.clear()
    if update.effective_message is not None:
        await update.effective_message.reply_text(progress_text(0))
    return 0


def text_answer(index: int) -> Callback:
    """Keep a typed answer to question `index` and ask the next question."""

    async def answer(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        """Store the answer, send the next question."""
        message = update.effective_message
        if message is None or context.user_data is None:
            return index
        context.user_data[QUESTIONS[index].key] = message.text
        following = index + 1
        await message.reply_text(
            progress_text(following), reply_markup=question_markup(QUESTIONS[following])
        )
        return following

    return answer


def button_answer(index: int) -> Callback:
    """Keep a pressed answer to question `index` and turn its message into the next question."""

    async def answer(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        """Acknowledge the press, store it, edit in the next question or the thanks."""
        query = update.callback_query
        if query is None or context.user_data is None:
            return index
        await query.answer()
        context.user_data[QUESTIONS[index].key] = query.data
        following = index + 1
        if following == len(QUESTIONS):
            await query.edit_message_text("Terima kasih, pendaftaran Anda sudah terkirim.")
            return ConversationHandler.END
        await query.edit_message_text(
            progress_text(following), reply_markup=question_markup(QUESTIONS[following])
        )
        return following

    return answer


async def cancel(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    """End the form."""
    if update.effective_message is not None:
        await update.effective_message.reply_text("Pendaftaran dibatalkan.")
    return ConversationHandler.END


def registration() -> ConversationHandler[ContextTypes.DEFAULT_TYPE]:
    """The form: one state per question."""
    states: dict[object, list[Any]] = {}
    for index, question in enumerate(QUESTIONS):
        if question.choices:
            states[index] = [CallbackQueryHandler(button_answer(index))]
        else:
            typed = filters.TEXT & ~filters.COMMAND & filters.Regex(question.pattern)
            states[index] = [MessageHandler(typed, text_answer(index))]
    return ConversationHandler(
        entry_points=[CommandHandler("start", start)],
        states=states,
        fallbacks=[CommandHandler("cancel", cancel)],
        name="registration",
        persistent=True,
    )


def main() -> None:
    """Run the form bot until it is stopped."""
    persistence = PicklePersistence(filepath=os.environ["BASELINE_STATE_FILE"])
    application = build_application(persistence)
    application.add_handler(registration())
    serve(application)


if __name__ == "__main__":
    main()
