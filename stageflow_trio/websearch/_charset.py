"""The charset a page's ``<meta>`` declares, read as the HTML standard's prescan reads it.

Shared by :attr:`~stageflow_trio.websearch.fetcher.FetchResult.text` (a page whose
``Content-Type`` names no charset) and the extractor's lexbor parser (bytes handed to
``extract``), so both decode a page alike.
"""

from __future__ import annotations

import codecs
import re

# `<meta charset=x>` or `<meta http-equiv=... content="...; charset=x">`.
_META_CHARSET = re.compile(rb"""<meta\s[^>]*?charset\s*=\s*["']?\s*([\w.:-]+)""", re.IGNORECASE)


def meta_charset(content: bytes) -> str | None:
    """The codec a ``<meta>`` in the first 1,024 bytes of ``content`` names, or None.

    None also when Python knows no codec of that name. A UTF-16 label (``utf-16``,
    ``UTF16LE``, ...) reads as UTF-8, as the standard's prescan has it: a page whose
    ``<meta>`` could be read as ASCII is not UTF-16. A codec that is not a text
    encoding (``base64``) is returned as named: decoding with it raises LookupError,
    which the callers take as "unknown".
    """
    match = _META_CHARSET.search(content, 0, 1024)
    if match is None:
        return None
    try:
        name = codecs.lookup(match.group(1).decode("ascii")).name
    except LookupError:
        return None
    return "utf-8" if name.startswith("utf-16") else name
