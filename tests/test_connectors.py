"""Connectors: folders of Parquet/CSV, SQLite, and a real PostgreSQL server started by the test."""

import os
import shutil
import socket
import sqlite3
import subprocess
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sketchrec.data.connectors import ConnectorError, read_table, to_parquet

ROWS = [(1, "a", 10), (1, "b", 11), (2, "a", 12), (3, "c", 13)]


def test_folder_of_parquet_and_csv(tmp_path):
    (tmp_path / "pq").mkdir()
    pq.write_table(pa.table({"user": [1, 1], "item": ["a", "b"]}), tmp_path / "pq" / "part-0.parquet")
    pq.write_table(pa.table({"user": [2], "item": ["c"]}), tmp_path / "pq" / "part-1.parquet")
    t = read_table(tmp_path / "pq", "SELECT user, item FROM events ORDER BY user, item")
    assert t.column("item").to_pylist() == ["a", "b", "c"]
    (tmp_path / "csv").mkdir()
    (tmp_path / "csv" / "a.csv").write_text("user,item\n1,x\n")
    (tmp_path / "csv" / "b.csv").write_text("user,item\n2,y\n")
    assert read_table(tmp_path / "csv").num_rows == 2
    with pytest.raises(ConnectorError, match="no such file"):
        read_table(tmp_path / "missing.parquet")


def test_sqlite(tmp_path):
    db = tmp_path / "events.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE events (user INTEGER, item TEXT, ts INTEGER)")
        conn.executemany("INSERT INTO events VALUES (?, ?, ?)", ROWS)
    t = read_table(f"sqlite:///{db}", "SELECT * FROM events ORDER BY ts", batch_rows=3)
    assert t.column("item").to_pylist() == ["a", "b", "a", "c"] and t.column("user").type == pa.int64()
    with pytest.raises(ConnectorError, match="query failed"):
        read_table(f"sqlite:///{db}", "SELECT * FROM nope")
    with pytest.raises(ConnectorError, match="need a query"):
        read_table(f"sqlite:///{db}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres(tmp_path_factory):
    """A throw-away PostgreSQL server on loopback (Debian's postgresql package; `make setup` installs it)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    initdb = shutil.which("initdb") or (str(found[-1]) if found else "")
    if not initdb or not Path(initdb).exists():
        pytest.skip("PostgreSQL server binaries not installed (make setup installs the postgresql package)")
    base = tmp_path_factory.mktemp("pg")
    data = base / "data"
    as_user = []
    if os.geteuid() == 0:                                 # the server refuses to run as root
        os.chmod(base, 0o777)
        for parent in list(base.parents)[:-1]:
            try:
                os.chmod(parent, os.stat(parent).st_mode | 0o011)
            except PermissionError:
                pass
        as_user = ["runuser", "-u", "postgres", "--"]
    subprocess.run(as_user + [initdb, "-D", str(data), "-U", "sketch", "--auth=trust", "-E", "UTF8"],
                   check=True, capture_output=True)
    port = free_port()
    pg_ctl = str(Path(initdb).with_name("pg_ctl"))
    subprocess.run(as_user + [pg_ctl, "-D", str(data), "-l", str(base / "log"), "-w", "-o",
                              f"-p {port} -k {base} -c listen_addresses=127.0.0.1", "start"],
                   check=True, capture_output=True)
    dsn = f"postgresql://sketch@127.0.0.1:{port}/postgres"
    import psycopg
    for _ in range(100):
        try:
            with psycopg.connect(dsn) as conn:
                conn.execute("CREATE TABLE events (user_id BIGINT, item TEXT, ts BIGINT)")
                with conn.cursor().copy("COPY events FROM STDIN") as copy:
                    for r in ROWS * 5000:
                        copy.write_row(r)
            break
        except psycopg.OperationalError:
            time.sleep(0.1)
    yield dsn
    subprocess.run(as_user + [pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)


def test_postgres_streams_a_query(postgres, tmp_path):
    t = read_table(postgres, "SELECT user_id, item, ts FROM events WHERE user_id = 1", block_size=1 << 12)
    assert t.num_rows == 10_000 and set(t.column("item").to_pylist()) == {"a", "b"}
    assert t.column("user_id").type == pa.int64()
    n = to_parquet(postgres, "SELECT * FROM events", tmp_path / "events.parquet", block_size=1 << 12)
    assert n == 20_000 and pq.read_table(tmp_path / "events.parquet").num_rows == 20_000


def test_postgres_errors_are_clear(postgres):
    with pytest.raises(ConnectorError, match="query failed"):
        read_table(postgres, "SELECT * FROM no_such_table")
    with pytest.raises(ConnectorError, match="cannot connect"):
        read_table("postgresql://sketch@127.0.0.1:1/postgres", "SELECT 1")
