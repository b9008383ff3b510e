"""Ordered paragraphs: articles read from WikiText "raw" files, for next-paragraph prediction.

WikiText raw format: `` = Title = `` (one ``=`` each side) starts an article; `` = = Section = = ``
and deeper levels are section headings; every other non-blank line is one paragraph, tokens
separated by spaces, with `` @-@ ``, `` @,@ `` and `` @.@ `` standing for ``-``, ``,`` and ``.``
inside numbers and compounds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from keff.data._io import read_lines
from keff.errors import DataError

_HEADING = re.compile(r"^((?:= )+)(.*?)((?: =)+)$")
_MARKERS = ((" @-@ ", "-"), (" @,@ ", ","), (" @.@ ", "."))


@dataclass(frozen=True)
class Article:
    """One article: its title and its paragraphs in order (section headings dropped)."""

    title: str
    paragraphs: list[str]


def detokenize(text: str) -> str:
    """Undo WikiText's ``@-@``, ``@,@`` and ``@.@`` markers and trim the ends."""
    for marker, char in _MARKERS:
        text = text.replace(marker, char)
    return text.strip()


def heading_level(line: str) -> tuple[int, str] | None:
    """``(level, text)`` if ``line`` is a WikiText heading (`` = T = `` is level 1), else None."""
    match = _HEADING.match(line.strip())
    if match is None:
        return None
    lead, text, trail = match.groups()
    level = lead.count("=")
    if level != trail.count("=") or not text.strip():
        return None
    return level, text


def load_wikitext(path: str | Path) -> list[Article]:
    """Read a WikiText raw file into articles.

    Parameters
    ----------
    path : str or Path
        The ``.raw`` (or ``.tokens``) file.

    Returns
    -------
    list of Article
        Articles in file order; articles without any paragraph are dropped.

    Raises
    ------
    DataError
        Text before the first `` = Title = `` line (naming that line), or no article at all.
    """
    path = Path(path)
    _, lines = read_lines(path, what="WikiText raw file")
    articles: list[Article] = []
    current: Article | None = None
    for number, line in lines:
        heading = heading_level(line)
        if heading is not None and heading[0] == 1:
            current = Article(title=detokenize(heading[1]), paragraphs=[])
            articles.append(current)
            continue
        if current is None:
            raise DataError(
                "text before the first article title (expected a ' = Title = ' line first)",
                path=path,
                line=number,
            )
        if heading is None:
            current.paragraphs.append(detokenize(line))
    kept = [a for a in articles if a.paragraphs]
    if not kept:
        raise DataError("no article with paragraphs found", path=path)
    return kept
