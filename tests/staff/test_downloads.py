"""Cells of the staff area's CSV downloads."""

import pytest

from subscriptions.views.staff.downloads import csv_cell


@pytest.mark.parametrize("text", ["=1+1", " =1+1", "\n=1+1", "\uff1dHYPERLINK(1)", "\uff0b1", "@SUM(A1)", "\t1", "-1"])
def test_a_csv_cell_that_a_spreadsheet_would_run_is_defused(text):
    assert csv_cell(text) == f"'{text}"


@pytest.mark.parametrize("text", ["Kent Police", "Ad hoc updates", "", "50%"])
def test_a_csv_cell_of_plain_text_is_left_as_it_is(text):
    assert csv_cell(text) == text
