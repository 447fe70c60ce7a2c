"""Row and column limits every decoder checks before it parses a body in full."""

from __future__ import annotations

from dataclasses import dataclass

from container.errors import BadRequest, PayloadTooLarge


@dataclass(frozen=True)
class Limits:
    """The largest request matrix accepted (`XGB_SERVER_MAX_ROWS`, `XGB_SERVER_MAX_COLUMNS`)."""

    max_rows: int
    max_columns: int

    def check(self, rows: int, columns: int) -> None:
        """Refuse an empty matrix (400) or one over the limits (413)."""
        if rows == 0:
            raise BadRequest("The request holds no rows; send at least one row of features.")
        if rows > self.max_rows:
            raise PayloadTooLarge(
                f"The request holds {rows} rows; the limit is {self.max_rows} "
                "(XGB_SERVER_MAX_ROWS). Split it into smaller requests."
            )
        if columns > self.max_columns:
            raise PayloadTooLarge(
                f"A row holds {columns} columns; the limit is {self.max_columns} "
                "(XGB_SERVER_MAX_COLUMNS)."
            )
