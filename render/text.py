"""User text inside messages."""

from __future__ import annotations


def escaped(text: str) -> str:
    """`text` with control characters (newlines, terminal escapes) written as escapes: a message
    stays one line, and a file name cannot forge a second."""
    return text if text.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
