"""The password policy (docs/security.md, "Passwords"): at least 12 characters, and not one that
zxcvbn's frequency lists (common passwords, names, words, keyboard patterns) make easy to guess.

Applied wherever a password is set: the change password page, ``flask users create`` and
``flask seed-demo``. Logging in never applies it: an old password keeps working until changed.
"""

from __future__ import annotations

from collections.abc import Sequence

from zxcvbn import zxcvbn

MIN_LENGTH = 12
MIN_SCORE = 3  # zxcvbn's 0-4 scale: 3 is "safely unguessable" (about 10^8 guesses and more)
# zxcvbn refuses more than 72 characters (its work grows with the length): the first 72 are scored.
CHECKED_CHARS = 72


def problems(password: str, user_inputs: Sequence[str] = ()) -> list[str]:
    """What is wrong with ``password`` as a new password, in words for the field (empty: fine).

    ``user_inputs`` (the email, the name) count as easy to guess, as zxcvbn's dictionaries do.
    """
    if len(password) < MIN_LENGTH:
        return [f"Password must be at least {MIN_LENGTH} characters (this one has {len(password)})."]
    inputs = [part for value in user_inputs for part in _parts(value)]
    result = zxcvbn(password[:CHECKED_CHARS], user_inputs=inputs)
    if result["score"] >= MIN_SCORE:
        return []
    feedback = result["feedback"]
    messages = ["This password is too easy to guess."]
    if feedback.get("warning"):
        messages.append(str(feedback["warning"]))
    messages.extend(str(suggestion) for suggestion in feedback.get("suggestions", []))
    return [" ".join(messages)]


def _parts(value: str) -> list[str]:
    """An email counts whole and by its parts (``alice``, ``acme``)."""
    value = value.strip().lower()
    if not value:
        return []
    local, _, domain = value.partition("@")
    return [value, local, *domain.split(".")[:1]] if domain else [value]
