"""Atomic writes never leave a half-written file behind."""

import csv
import os
import stat

import pandas as pd
import pytest

from textmine.atomic import atomic_open, write_csv_atomic


def test_interrupted_write_keeps_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old\n", encoding="utf-8")
    with pytest.raises(RuntimeError), atomic_open(target, "w", encoding="utf-8") as handle:
        handle.write("half of the new")
        raise RuntimeError("killed mid-write")
    assert target.read_text(encoding="utf-8") == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_csv_quotes_carriage_returns_and_round_trips(tmp_path):
    frame = pd.DataFrame({"id": [1, 2], "text": ['a lone \r here, and "quotes"', "line\nbreak"]})
    target = tmp_path / "x.csv"
    write_csv_atomic(target, frame)
    with open(target, encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[1:] == [["1", 'a lone \r here, and "quotes"'], ["2", "line\nbreak"]]
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o644
