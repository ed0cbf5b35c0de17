"""Text the command line writes one line per item: names and messages kept on their line."""

from __future__ import annotations

import re
import unicodedata

__all__ = ["cut_to_width", "one_line"]

# The escapes the live view writes itself (colours): no column on the screen.
_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


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


def _columns(char: str) -> int:
    if unicodedata.combining(char):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def cut_to_width(line: str, width: int, ellipsis: str = "…") -> tuple[str, int]:
    """``line`` (printable text and colour escapes) cut to ``width`` terminal columns.

    The columns are the display width: escapes take none, a wide East Asian
    character two, a combining mark none. A line that does not fit is cut to
    ``width - len(ellipsis)`` columns and ends with ``ellipsis`` and, if it held an
    escape, a colour reset: wider than the terminal, it would take two rows and the
    live view's count of the rows it redraws would be wrong. Returns the line and
    the columns it takes.
    """
    if line.isascii() and "\x1b" not in line:  # the common case, in one step
        if len(line) <= width:
            return line, len(line)
        keep = max(width - len(ellipsis), 0)
        return line[:keep] + ellipsis[: width - keep], min(width, keep + len(ellipsis))
    pieces: list[str] = []
    used = 0
    cut_at: tuple[int, int] | None = None  # (pieces, columns) where the ellipsis would go
    limit = width - len(ellipsis)
    position = 0
    escaped = False
    while position < len(line):
        match = _ESCAPE.match(line, position) if line[position] == "\x1b" else None
        if match is not None:
            pieces.append(match.group())
            escaped = True
            position = match.end()
            continue
        char = line[position]
        columns = _columns(char)
        if cut_at is None and used + columns > limit:
            cut_at = (len(pieces), used)
        if used + columns > width:
            count, used = cut_at if cut_at is not None else (len(pieces), used)
            kept = "".join(pieces[:count])
            tail = ellipsis[: max(width - used, 0)]
            reset = "\x1b[0m" if escaped else ""
            return kept + tail + reset, used + len(tail)
        pieces.append(char)
        used += columns
        position += 1
    return line, used
