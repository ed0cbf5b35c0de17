"""Text the command line writes one line per item: names and messages kept on their line."""

from __future__ import annotations

__all__ = ["one_line"]


def one_line(text: str) -> str:
    """``text`` with what is not printable as its Python escape.

    A line break, NUL, a zero-width space or a lone surrogate becomes ``\\n``,
    ``\\x00``, ``\\u200b``, ``\\ud800``: a stage named ``"a\\nb"`` (or an error
    message over two lines) broke the one line per stage of the text drawing, the
    plain view's one line per event, and the live view's count of the lines it
    redraws. Printable text, non-ASCII included, is kept as it is.
    """
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else ascii(char)[1:-1] for char in text)
