"""Baseline bots for the registration benchmark, written the way python-telegram-bot's examples are.

``conversation`` is a 12-question form on a ConversationHandler with PicklePersistence and
``echo`` answers every text with itself. Each runs as its own process (``python -m
bench.baselines.conversation``) against the fake Telegram, configured from the environment:
``TELEGRAM_BOT_TOKEN``, ``TELEGRAM_API_BASE_URL``, ``BASELINE_RATE_LIMITER`` (``1``: PTB's
AIORateLimiter, as a bot facing Telegram's flood limit needs) and, for the form,
``BASELINE_STATE_FILE`` (the pickle file).
"""
