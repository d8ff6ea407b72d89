"""The channel-free core: validation, the registration form, contributions, villages, exports."""
