"""The package's exceptions: what a user can fix gets one line naming the setting and the fix."""
from __future__ import annotations

import difflib
from typing import Callable, Iterable

__all__ = ["ConfigError", "did_you_mean"]


class ConfigError(ValueError):
    """Bad user input: the message names the field and how to fix it."""


def did_you_mean(word: str, choices: Iterable[str], show: Callable[[str], str] = repr) -> str:
    """``"; did you mean <closest>?"`` for a misspelt ``word``, or ``""`` when no choice is close."""
    close = difflib.get_close_matches(word, list(choices), 1)
    return f"; did you mean {show(close[0])}?" if close else ""
