"""CSV downloads from the staff area: cells a spreadsheet cannot run, and the response."""

import csv
import io
import unicodedata

from django.http import HttpResponse


def csv_cell(value: object) -> str:
    text = str(value)
    # A spreadsheet runs a cell that starts like a formula, also after leading spaces or
    # line breaks, or with a full-width sign (U+FF1D): a name is not a formula.
    first = unicodedata.normalize("NFKC", text.lstrip(" \t\r\n"))[:1]
    return f"'{text}" if first in ("=", "+", "-", "@") or text[:1] in ("\t", "\r", "\n") else text


def csv_response(rows: list[list[object]], filename: str) -> HttpResponse:
    """A small CSV file to download, every cell defused."""
    text = io.StringIO()
    writer = csv.writer(text)
    for row in rows:
        writer.writerow([csv_cell(value) for value in row])
    response = HttpResponse(text.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
