"""Reading events: every format, validation at the edge, bad-row reporting, id maps."""

import gzip
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sketchrec.data import DataValidationError, IdMap, read_interactions

ROWS = [("s1", "a", "2024-01-01 10:00:00", "view", "1.0"),
        ("s1", "b", "2024-01-01 10:01:00", "view", "2"),
        ("s2", "a", "2024-01-02 09:00:00", "buy", "0.5"),
        ("s3", "c", "2024-01-03 12:00:00", "view", "1")]


def write_csv(path, rows, delim=",", header=("sess", "item", "ts", "ev", "w")):
    text = "\n".join(delim.join(r) for r in [header, *rows]) + "\n"
    if str(path).endswith(".gz"):
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    return path


def read(path, **kw):
    return read_interactions(path, user="sess", item="item", timestamp="ts", event="ev", weight="w", **kw)


def test_csv_roundtrip_ids_and_columns(tmp_path):
    inter = read(write_csv(tmp_path / "e.csv", ROWS))
    assert len(inter) == 4 and inter.n_users == 3 and inter.n_items == 3
    # first appearance order: a=0, b=1, c=2; s1=0, s2=1, s3=2
    assert inter.item.tolist() == [0, 1, 0, 2]
    assert inter.user.tolist() == [0, 0, 1, 2]
    assert inter.item_ids.to_external([2, 0]) == ["c", "a"]
    assert inter.timestamp[1] - inter.timestamp[0] == 60
    assert inter.timestamp[0] == 1704103200  # 2024-01-01 10:00:00 UTC
    np.testing.assert_allclose(inter.weight, [1.0, 2.0, 0.5, 1.0])
    assert inter.event_ids.to_external(inter.event).__len__() == 4
    assert inter.event_ids.to_external(inter.event[2:3]) == ["buy"]
    assert inter.report.n_bad == 0


@pytest.mark.parametrize("name,delim", [("e.tsv", "\t"), ("e.tsv.gz", "\t"), ("e.csv.gz", ";"),
                                        ("e.txt", "|")])
def test_delimiters_and_gzip(tmp_path, name, delim):
    inter = read(write_csv(tmp_path / name, ROWS, delim=delim))
    assert len(inter) == 4 and inter.n_items == 3


def test_parquet_jsonl_and_sql_agree(tmp_path):
    base = read(write_csv(tmp_path / "e.csv", ROWS))
    cols = list(zip(*ROWS))
    table = pa.table({"sess": cols[0], "item": cols[1], "ts": cols[2], "ev": cols[3],
                      "w": [float(x) for x in cols[4]]})
    pq.write_table(table, tmp_path / "e.parquet")
    with open(tmp_path / "e.jsonl", "w") as fh:
        for r in table.to_pylist():
            fh.write(json.dumps(r) + "\n")
    for inter in (read(tmp_path / "e.parquet"), read(tmp_path / "e.jsonl"),
                  read_interactions(sql=f"SELECT * FROM read_parquet('{tmp_path / 'e.parquet'}')",
                                    user="sess", item="item", timestamp="ts", event="ev", weight="w")):
        assert inter.item.tolist() == base.item.tolist()
        assert inter.timestamp.tolist() == base.timestamp.tolist()
        np.testing.assert_allclose(inter.weight, base.weight)


def test_numeric_timestamps_units(tmp_path):
    rows = [("u", "a", "1700000000", "v", "1"), ("u", "b", "1700000000500", "v", "1")]
    inter = read(write_csv(tmp_path / "e.csv", rows))
    assert inter.timestamp.tolist() == [1700000000, 1700000000]  # ms guessed from magnitude
    inter = read(write_csv(tmp_path / "e.csv", rows[:1]), timestamp_unit="ms")
    assert inter.timestamp.tolist() == [1700000]


@pytest.mark.parametrize("bad_row,column,problem", [
    (("s9", "", "2024-01-01 10:00:00", "view", "1"), "item", "empty"),
    (("s9", "a", "yesterday-ish", "view", "1"), "ts", "timestamp"),
    (("s9", "a", "2024-01-01 10:00:00", "view", "-3"), "w", "weight"),
    (("s9", "a", "2024-01-01 10:00:00", "view", "NaN"), "w", "weight"),
    (("s9", "a", "2024-01-01 10:00:00", "view", "heavy"), "w", "weight"),
    (("", "a", "2024-01-01 10:00:00", "view", "1"), "sess", "empty"),
])
def test_bad_value_raises_naming_row_and_column(tmp_path, bad_row, column, problem):
    rows = ROWS[:2] + [bad_row] + ROWS[2:]
    with pytest.raises(DataValidationError) as err:
        read(write_csv(tmp_path / "e.csv", rows))
    e = err.value
    assert e.row == 3 and e.line == 4 and e.column == column
    assert problem in str(e) and "line 4" in str(e) and "e.csv" in str(e)


def test_skip_reports_every_bad_row(tmp_path):
    rows = list(ROWS)
    rows.insert(1, ("s9", "a", "not a time", "view", "1"))
    rows.insert(3, ("s9", "", "2024-01-01 10:00:00", "view", "-1"))
    inter = read(write_csv(tmp_path / "e.csv", rows), on_bad_rows="skip")
    assert len(inter) == 4
    rep = inter.report
    assert rep.rows_read == 6 and rep.rows_kept == 4 and rep.n_bad == 2
    assert rep.bad_rows.tolist() == [2, 4] and rep.bad_lines.tolist() == [3, 5]
    assert rep.counts_by_column() == {"item": 1, "timestamp": 1, "weight": 1}
    assert "skipped 2 bad rows" in rep.summary()


def test_malformed_line_raises_with_line_number_and_skip_reports_it(tmp_path):
    path = tmp_path / "e.csv"
    path.write_text("sess,item,ts,ev,w\ns1,a,2024-01-01,view,1\ns1,b,2024-01-02\n"
                    "s2,a,2024-01-02,view,1\ns2,c,not-a-date,view,1\n")
    with pytest.raises(DataValidationError) as err:
        read(path)
    assert err.value.line == 3 and "Expected Number of Columns" in str(err.value)
    inter = read(path, on_bad_rows="skip")
    assert len(inter) == 2
    rep = inter.report
    # the bad timestamp sits on line 5: the skipped malformed line 3 is accounted for
    assert rep.bad_lines.tolist() == [3, 5] and rep.reasons.tolist() == [0, 4]
    assert "Expected Number of Columns" in rep.messages[0]
    assert rep.rows_read == 4 == rep.rows_kept + rep.n_bad


def test_missing_column_and_file_errors(tmp_path):
    path = write_csv(tmp_path / "e.csv", ROWS)
    with pytest.raises(DataValidationError, match="missing column.*'nope'"):
        read_interactions(path, user="sess", item="nope")
    with pytest.raises(FileNotFoundError, match="no such file"):
        read(tmp_path / "absent.csv")
    with pytest.raises(ValueError, match="on_bad_rows"):
        read(path, on_bad_rows="ignore")


def test_idmap_lookup_reports_unknown_and_persists(tmp_path):
    inter = read(write_csv(tmp_path / "e.csv", ROWS))
    look = inter.item_ids.lookup(["c", "zzz", "a", "zzz"])
    assert look.internal.tolist() == [2, -1, 0, -1] and look.unknown == ["zzz"]
    inter.item_ids.save(tmp_path / "items.parquet")
    again = IdMap.load(tmp_path / "items.parquet")
    assert again == inter.item_ids and again.name == "item"
    # integer map asked with strings (and vice versa) still answers
    imap, codes = IdMap.factorize(np.array([10, 30, 10, 20]))
    assert codes.tolist() == [0, 1, 0, 2]
    assert imap.lookup(["30", "x"]).internal.tolist() == [1, -1]
    assert imap.lookup([20, 99]).unknown == [99]


def test_to_sessions_orders_by_time_and_splits_on_gaps(tmp_path):
    rows = [("u", "b", "2024-01-01 10:05:00", "v", "1"), ("u", "a", "2024-01-01 10:00:00", "v", "1"),
            ("u", "c", "2024-01-01 13:00:00", "v", "1"), ("w", "a", "2024-01-01 10:00:00", "v", "1")]
    inter = read(write_csv(tmp_path / "e.csv", rows))
    per_user = inter.to_sessions()
    assert [inter.item_ids.to_external(r) for r in per_user.to_lists()] == [["a", "b", "c"], ["a"]]
    by_gap = inter.to_sessions(gap_seconds=30 * 60)
    assert [inter.item_ids.to_external(r) for r in by_gap.to_lists()] == [["a", "b"], ["c"], ["a"]]
