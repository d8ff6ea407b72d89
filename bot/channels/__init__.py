"""Adapters between chat channels and the channel-free core (Telegram today)."""
