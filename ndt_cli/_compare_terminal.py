"""`ndt compare`'s terminal output: the compare layout as rich tables."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Group, RenderableType
from rich.rule import Rule
from rich.table import Column, Table
from rich.text import Text

if TYPE_CHECKING:  # pragma: no cover
    from ndt.visualization.compare_layout import CompareLayout, TextTable


def _table(table: TextTable) -> Table:
    # Fold, never cut: two layers named transformer.h.0 and transformer.h.1 must not both
    # shrink to "transformer.…" on an 80-column terminal.
    columns = (Column(name, overflow="fold") for name in table.columns)
    rich_table = Table(*columns, title=table.title or None)
    for row in table.rows:
        rich_table.add_row(*row)
    return rich_table


def compare_terminal(layout: CompareLayout) -> RenderableType:
    """What `ndt compare` prints on stdout: the header, the ranking, then each layer's
    lines and tables (the notes go to stderr). Print it with ``soft_wrap=True``: the tables
    fit the width, and lines holding paths are left for the terminal to wrap."""
    parts: list[RenderableType] = [Text(line) for line in layout.header]
    parts.append(_table(layout.ranking))
    for section in layout.layers:
        parts.append(Rule(section.heading))
        parts += [Text(line) for line in section.lines]
        parts += [_table(t) for t in section.tables]
    return Group(*parts)
