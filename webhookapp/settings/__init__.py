"""Account settings: API tokens."""
