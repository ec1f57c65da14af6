"""The tester's hostile inputs (issue 28): each one is read right, or refused with file, line, column and value."""

import gzip
import json
import zipfile

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from sketchrec.cli import app
from sketchrec.data import DataValidationError, read_interactions
from sketchrec.data.readers import InputNotFoundError

HEADER = "sess,item,ts,w\n"
GOOD = "s1,a,2016-05-01,1\n"
MAY_1 = 1462060800  # 2016-05-01 00:00:00 UTC


def read(path, **kw):
    return read_interactions(path, user="sess", item="item", timestamp="ts", weight="w", **kw)


def skip_read(path):
    inter = read(path, on_bad_rows="skip")
    rep = inter.report
    assert rep.rows_read == rep.rows_kept + rep.n_bad == len(inter) + rep.n_bad
    return inter, rep


def test_offsets_are_converted_to_utc_and_naive_times_are_utc(tmp_path):
    path = tmp_path / "e.csv"
    path.write_text(HEADER + "s1,a,2016-05-01T13:17:51+02:00,1\ns1,b,2016-05-01T13:17:51Z,1\n"
                    "s1,c,2016-05-01 13:17:51,1\ns1,d,2016-05-01T13:17:51-0530,1\n")
    assert read(path).timestamp.tolist() == [MAY_1 + 11 * 3600 + 17 * 60 + 51, MAY_1 + 13 * 3600 + 1071,
                                             MAY_1 + 13 * 3600 + 1071, MAY_1 + 18 * 3600 + 47 * 60 + 51]


def test_stray_quote_that_closes_later_is_one_reported_row_with_its_lines(tmp_path):
    path = tmp_path / "e.csv"
    path.write_text(HEADER + GOOD + 's1,"b,2016-05-01,1\ns2,c,2016-05-01,1\ns3,d",2016-05-01,1\n' + GOOD)
    inter, rep = skip_read(path)
    assert len(inter) == 2 and rep.n_bad == 1
    assert (rep.bad_lines.tolist(), rep.bad_spans.tolist(), rep.reasons.tolist()) == ([3], [3], [32])
    assert "lines 3-5" in rep.summary()
    with pytest.raises(DataValidationError) as err:
        read(path)
    assert (err.value.line, err.value.span, err.value.column) == (3, 3, "item")
    assert "lines 3-5" in str(err.value) and "quote" in str(err.value)


def test_unterminated_quote_is_reported_to_the_end_of_the_file(tmp_path):
    path = tmp_path / "e.csv"
    path.write_text(HEADER + GOOD + 's1,"b,2016-05-01,1\n' + GOOD * 2)
    inter, rep = skip_read(path)
    assert len(inter) == 1 and rep.bad_lines.tolist() == [3] and rep.bad_spans.tolist() == [3]
    assert "unterminated quote" in rep.messages[0]
    with pytest.raises(DataValidationError, match="line.*3-5.*unterminated quote"):
        read(path)


def test_glob_matches_columns_by_name_and_counts_lines_per_file(tmp_path):
    (tmp_path / "part1.csv").write_text(HEADER + GOOD + "\ns1,b,2016-05-01,oops\n")
    (tmp_path / "part2.csv").write_text("w,ts,item,sess\n2,2016-05-02,x,s9\n-1,2016-05-02,y,s9\n")
    inter, rep = skip_read(str(tmp_path / "part*.csv"))  # absolute glob
    assert inter.item_ids.to_external(inter.item) == ["a", "x"]
    assert inter.user_ids.to_external(inter.user) == ["s1", "s9"]
    np.testing.assert_allclose(inter.weight, [1, 2])
    assert [rep.where(i) for i in range(2)] == [f"{tmp_path}/part1.csv line 4", f"{tmp_path}/part2.csv line 3"]
    (tmp_path / "part3.csv").write_text("sess,item,w\ns1,a,1\n")
    with pytest.raises(DataValidationError, match=r"part3.csv: missing column\(s\) \['ts'\]"):
        read(str(tmp_path / "part*.csv"), on_bad_rows="skip")


def test_glob_or_folder_with_nothing_is_a_file_not_found(tmp_path):
    with pytest.raises(InputNotFoundError, match="no file matches"):
        read(str(tmp_path / "nothing*.csv"))
    with pytest.raises(FileNotFoundError, match="no .*files in it"):
        read(tmp_path)
    with pytest.raises(DataValidationError, match="no such file"):
        read(tmp_path / "absent.csv")


@pytest.mark.parametrize("column,value", [("w", "1e39"), ("w", "inf"), ("ts", "1e30"), ("ts", "inf"),
                                          ("ts", "10000-01-01"), ("ts", "-1e300")])
def test_out_of_range_values_are_bad_rows_not_a_failed_read(tmp_path, column, value):
    path = tmp_path / "e.csv"
    row = {"sess": "s1", "item": "b", "ts": "2016-05-01", "w": "1", column: value}
    path.write_text(HEADER + GOOD + ",".join(row.values()) + "\n")
    inter, rep = skip_read(path)
    assert len(inter) == 1 and rep.bad_lines.tolist() == [3]
    with pytest.raises(DataValidationError) as err:
        read(path)
    assert (err.value.line, err.value.column, err.value.value) == (3, column, value)


def test_compression_is_told_from_the_bytes(tmp_path):
    plain = tmp_path / "plain.csv.gz"
    plain.write_text(HEADER + GOOD)
    hidden = tmp_path / "hidden.csv"
    hidden.write_bytes(gzip.compress((HEADER + GOOD).encode()))
    assert len(read(plain)) == len(read(hidden)) == 1
    cut = tmp_path / "cut.csv.gz"
    rows = "".join(f"s{i},i{i * 7919 % 10007},{MAY_1 + i},1\n" for i in range(50_000))  # does not compress to nothing
    data = gzip.compress((HEADER + rows).encode())
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataValidationError, match="cut.csv.gz: cannot read"):
        read(cut)
    with zipfile.ZipFile(tmp_path / "e.zip", "w") as z:
        z.writestr("e.csv", HEADER + GOOD)
    with pytest.raises(DataValidationError, match="zip archive"):
        read(tmp_path / "e.zip")


def test_garbage_parquet_and_list_columns_are_refused_by_name(tmp_path):
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(DataValidationError, match="bad.parquet: not a Parquet file"):
        read(tmp_path / "bad.parquet")
    pq.write_table(pa.table({"sess": ["s1"], "item": [[1, 2]], "ts": ["2016-05-01"], "w": [1.0]}),
                   tmp_path / "list.parquet")
    with pytest.raises(DataValidationError, match="column 'item'.*BIGINT\\[\\]"):
        read(tmp_path / "list.parquet")
    pq.write_table(pa.table({"sess": [1.0, np.nan, 2.5], "item": ["a", "b", "c"], "ts": [MAY_1] * 3,
                             "w": [1.0, 2.0, np.nan]}), tmp_path / "floats.parquet")
    inter, rep = skip_read(tmp_path / "floats.parquet")
    assert inter.user_ids.to_external(inter.user) == [1] and rep.bad_rows.tolist() == [2, 3]


def test_jsonl_broken_line_is_skipped_or_raised_with_its_line(tmp_path):
    path = tmp_path / "e.jsonl"
    rows = [{"sess": "s1", "item": "a", "ts": "2016-05-01", "w": 1}, {"sess": "s1", "item": [1], "ts": 1, "w": 1}]
    path.write_text(json.dumps(rows[0]) + '\n{"sess": "s1", "item":\n\n' + json.dumps(rows[1]) + "\n[1]\n")
    inter, rep = skip_read(path)
    assert len(inter) == 1 and rep.bad_lines.tolist() == [2, 4, 5]
    assert rep.reasons.tolist() == [0, 2, 0] and "not valid JSON" in rep.messages[0]
    with pytest.raises(DataValidationError, match="line 2.*not valid JSON"):
        read(path)


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-be-bom"])
def test_byte_order_marks(tmp_path, encoding):
    text = HEADER + "s1,é,2016-05-01,1\n"
    data = b"\xfe\xff" + text.encode("utf-16-be") if encoding == "utf-16-be-bom" else text.encode(encoding)
    (tmp_path / "e.csv").write_bytes(data)
    inter = read(tmp_path / "e.csv")
    assert inter.item_ids.to_external(inter.item) == ["é"]
    (tmp_path / "e.jsonl").write_bytes("\ufeff{\"sess\": \"s1\", \"item\": \"a\", \"ts\": 1, \"w\": 1}\n".encode())
    assert len(read(tmp_path / "e.jsonl")) == 1


def test_bytes_that_are_not_utf8_make_their_line_malformed(tmp_path):
    path = tmp_path / "e.csv"
    path.write_bytes((HEADER + GOOD).encode() + b"s1,caf\xe9,2016-05-01,1\n" + GOOD.encode())
    inter, rep = skip_read(path)
    assert len(inter) == 2 and rep.bad_lines.tolist() == [3] and "not utf-8" in rep.messages[0]


def test_blank_lines_and_multiline_values_keep_line_numbers_right(tmp_path):
    path = tmp_path / "e.csv"
    path.write_text("sess,item,ts,w,note\n\ns1,a,2016-05-01,1,\"two\nlines\"\n\n\ns1,,2016-05-01,1,\n")
    inter, rep = skip_read(path)
    assert len(inter) == 1 and rep.bad_lines.tolist() == [7]


def test_header_problems(tmp_path):
    (tmp_path / "dup.csv").write_text("sess,item,item,ts,w\ns1,a,b,2016-05-01,1\n")
    with pytest.raises(DataValidationError, match="'item'.*more than once"):
        read(tmp_path / "dup.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataValidationError, match="empty"):
        read(tmp_path / "empty.csv")


@pytest.mark.parametrize("name,content", [
    ("fake.csv.gz", b"sess,item\n"), ("bad.parquet", b"garbage"), ("list.parquet", None),
    ("broken.jsonl", b'{"sess": "s1", "item":\n'), ("nothing*.csv", None), ("empty.csv", b""),
])
def test_data_inspect_never_shows_a_traceback(tmp_path, name, content):
    path = tmp_path / name
    if name == "list.parquet":
        pq.write_table(pa.table({"sess": ["s1"], "item": [[1]], "ts": ["2016-05-01"]}), path)
    elif content is not None:
        path.write_bytes(content)
    for mode in ("skip", "raise"):
        result = CliRunner().invoke(app, ["data", "inspect", str(path), "--user", "sess", "--item", "item",
                                          "--timestamp", "ts", "--on-bad-rows", mode])
        assert "Traceback" not in result.output and not isinstance(result.exception, (IndexError, NotImplementedError))
        assert result.exit_code in (0, 2), result.output
        if result.exit_code == 2:
            assert result.output.startswith("error:") and name.split("*")[0] in result.output
