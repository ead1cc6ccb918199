"""HTML tables as Word tables: the grid laid out as browsers do, colspan as gridSpan, rowspan as vMerge.

Word has no cell spanning rows: a cell of rowspan n starts a vertical merge and each of
the n - 1 rows below holds a continuing cell at the same place. Those are counted against
the limit before any is written, so a few rowspans cannot make millions of cells.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import ConversionError

# Word's most columns in a table; cells beyond them join the row's last cell.
MAX_COLUMNS = 63
_MAX_ROWSPAN = 65534  # HTML's own cap
EMPTY_PARAGRAPH = "<w:p/>"
TABLE_START = "<w:tbl>"
_HEADER_ROW = "<w:tr><w:trPr><w:tblHeader/></w:trPr>"


@dataclass
class Cell:
    """A td or th: its spans and its content, as written blocks."""

    colspan: int
    rowspan: int  # 0: to the end of its row group, as in HTML
    header: bool
    blocks: list[str] = field(default_factory=list)


@dataclass
class Row:
    """A tr, in a row group (thead, tbody, tfoot or the table itself)."""

    group: int
    header: bool  # in a thead
    cells: list[Cell] = field(default_factory=list)


@dataclass
class Table:
    """A table as read, and what stood in it outside any cell (written before it, as browsers show it)."""

    right_to_left: bool
    rows: list[Row] = field(default_factory=list)
    before: list[str] = field(default_factory=list)
    group: int = 0


def span(value: str | None, default: int, highest: int) -> int:
    """A colspan or rowspan attribute as browsers read it."""
    digits = (value or "").strip()
    if not digits.isdigit():
        return default
    return min(int(digits), highest)


def colspan(value: str | None) -> int:
    return max(1, span(value, 1, MAX_COLUMNS))


def rowspan(value: str | None) -> int:
    return span(value, 1, _MAX_ROWSPAN)


def table_xml(table: Table, text_width: int, max_cells: int) -> str:
    """The w:tbl of a table ("" for one without cells); ConversionError past max_cells cells."""
    placed = _lay_out(table, max_cells)
    columns = max((column + width for row in placed for column, width, _ in row), default=0)
    if not columns:
        return ""
    column_width = max(1, text_width // columns)
    rows = []
    header_rows = True
    for row, cells in zip(table.rows, placed, strict=True):
        if not cells:
            continue
        # Word repeats only the leading header rows on each page: a header row is one of those.
        header_rows = header_rows and (row.header or bool(row.cells) and all(c.header for c in row.cells))
        rows.append(
            (_HEADER_ROW if header_rows else "<w:tr>")
            + "".join(_cell(value, width, column_width) for _, width, value in cells)
            + "</w:tr>"
        )
    properties = '<w:tblStyle w:val="TableGrid"/>' + ("<w:bidiVisual/>" if table.right_to_left else "")
    # The table style makes the first row bold when it is a header row.
    first_row = "1" if rows and rows[0].startswith(_HEADER_ROW) else "0"
    look = (
        f'<w:tblLook w:val="{0x0620 if first_row == "1" else 0x0600:04X}" w:firstRow="{first_row}"'
        ' w:lastRow="0"'
        ' w:firstColumn="0" w:lastColumn="0" w:noHBand="1" w:noVBand="1"/>'
    )
    grid = "".join(f'<w:gridCol w:w="{column_width}"/>' for _ in range(columns))
    return (
        f'{TABLE_START}<w:tblPr>{properties}<w:tblW w:w="5000" w:type="pct"/>{look}</w:tblPr>'
        f"<w:tblGrid>{grid}</w:tblGrid>{''.join(rows)}</w:tbl>"
    )


# What lies at a place of a row: a cell starting there, a continuing cell of a merge
# (True), or a filler for a gap before a continuing cell (None).
_Placed = tuple[int, int, "Cell | bool | None"]


def _lay_out(table: Table, max_cells: int) -> list[list[_Placed]]:
    """Each row's cells with their column and width, continuing cells of rowspans in place."""
    rows = table.rows
    # The last row of each row group: rowspans end there.
    group_end = {}
    for index, row in enumerate(rows):
        group_end[row.group] = index
    continuing: list[dict[int, int]] = [{} for _ in rows]  # row: column: width
    placed: list[list[_Placed]] = []
    count = 0
    for index, row in enumerate(rows):
        taken = continuing[index]
        cells: list[_Placed] = []
        column = 0
        for cell in row.cells:
            while column in taken:
                column += taken[column]
            if column >= MAX_COLUMNS:
                if cells:  # no room left in Word's grid: the content joins the last cell
                    last = next((c for _, _, c in reversed(cells) if isinstance(c, Cell)), None)
                    if last is not None:
                        last.blocks.extend(cell.blocks)
                continue
            width = min(cell.colspan, MAX_COLUMNS - column)
            # A cell running into a continuing one stops before it, as browsers overlap them.
            for other in taken:
                if column < other < column + width:
                    width = other - column
            end = group_end[row.group]
            last_row = end if cell.rowspan == 0 else min(end, index + cell.rowspan - 1)
            count += 1 + last_row - index
            if count > max_cells:
                raise ConversionError("a table has too many cells")
            for below in range(index + 1, last_row + 1):
                continuing[below][column] = width
            cell.rowspan = last_row - index + 1
            cells.append((column, width, cell))
            column += width
        # Cells are placed around the continuing ones, so no two overlap.
        cells.extend((start, width, True) for start, width in taken.items())
        cells.sort(key=lambda item: item[0])
        placed.append(_fill_gaps(cells))
    return placed


def _fill_gaps(cells: list[_Placed]) -> list[_Placed]:
    filled: list[_Placed] = []
    column = 0
    for start, width, value in cells:
        if start > column:
            filled.append((column, start - column, None))
        filled.append((start, width, value))
        column = start + width
    return filled


def _cell(cell: Cell | bool | None, width: int, column_width: int) -> str:
    properties = f'<w:tcW w:w="{width * column_width}" w:type="dxa"/>'
    if width > 1:
        properties += f'<w:gridSpan w:val="{width}"/>'
    blocks: list[str] = []
    if cell is True:
        properties += "<w:vMerge/>"
    elif isinstance(cell, Cell):
        if cell.rowspan > 1:
            properties += '<w:vMerge w:val="restart"/>'
        blocks = cell.blocks
    # A cell ends with a paragraph, also after a table in it.
    end = EMPTY_PARAGRAPH if not blocks or blocks[-1].startswith(TABLE_START) else ""
    return f"<w:tc><w:tcPr>{properties}</w:tcPr>{''.join(blocks)}{end}</w:tc>"
