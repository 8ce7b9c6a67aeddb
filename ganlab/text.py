"""Small helpers for the wording of user-facing messages."""

from __future__ import annotations


def with_article(noun: str) -> str:
    """``"an int"``, ``"a list"``, ``"a uint8 array"``: the article by the first letter
    (``u`` as in "uint8" and "unicode" takes "a")."""
    return f"{'an' if noun[:1].lower() in 'aeio' else 'a'} {noun}"


def error_reason(err: BaseException) -> str:
    """An exception as one line for a message: its text with whitespace collapsed (a
    multi-line reason would break the one-line error), or its type when it has no text."""
    text = " ".join(str(err).split())
    return text or type(err).__name__
