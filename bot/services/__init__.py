"""Channel-free services that work on the database: areas, the conversation, exports."""
