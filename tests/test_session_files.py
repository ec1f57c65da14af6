"""`SessionBenchmark.from_files`: a newcomer's own click files as a session benchmark, and the CLI
commands that take them (`--train/--test`)."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from sketchrec.cli import app
from sketchrec.data import DataValidationError
from sketchrec.data.benchmark import SessionBenchmark
from sketchrec.eval.protocols import evaluate_session_benchmark, next_item_ranks
from sketchrec.models import Popularity, VSKNN

TRAIN = ("session_id,item_id,timestamp\n"
         "s1,apple,1\ns1,pear,2\ns1,fig,3\n"
         "s2,pear,5\ns2,apple,6\n"
         "s3,fig,7\ns3,apple,8\ns3,pear,9\n")
# kiwi and plum appear only in the test file; t3 has one click (no pair)
TEST = ("session_id,item_id,timestamp\n"
        "t1,apple,10\nt1,kiwi,11\nt1,pear,12\n"
        "t2,plum,20\nt2,fig,21\n"
        "t3,pear,30\n")


@pytest.fixture
def files(tmp_path):
    (tmp_path / "train.csv").write_text(TRAIN)
    (tmp_path / "test.csv").write_text(TEST)
    return tmp_path / "train.csv", tmp_path / "test.csv"


def test_raw_string_ids_map_to_zero_based_ids_with_test_only_items_last(files):
    bench = SessionBenchmark.from_files(*files)
    assert bench.name == "train" and bench.n_items == 5 and bench.meta["test_only_items"] == 2
    assert bench.item_ids.keys.to_pylist() == ["apple", "pear", "fig", "kiwi", "plum"]
    assert bench.train.to_lists() == [[0, 1, 2], [1, 0], [2, 0, 1]]
    # pairs, longest prefix first within a session: t1 [apple, kiwi] -> pear, [apple] -> kiwi;
    # t2 [plum] -> fig; t3 has none
    assert bench.test_prefixes.to_lists() == [[0, 3], [0], [4]]
    assert bench.test_targets.tolist() == [1, 3, 2]
    assert len(bench.validation(0.34).train) == 2


@pytest.mark.parametrize("model", [Popularity(), VSKNN(neighbours=5)])
def test_models_score_prefixes_with_items_never_seen_in_training(files, model):
    bench = SessionBenchmark.from_files(*files)
    result = evaluate_session_benchmark(model, bench, progress=False)
    assert result.n_eval == 3
    ranks, _ = next_item_ranks(model, bench.test_prefixes, bench.test_targets)
    assert ranks[1] == 5                 # kiwi, never trained on: last, tied with plum (pessimistic)


def test_integer_ids_time_order_and_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    pq.write_table(pa.table({"sid": [7, 7, 7, 9, 9], "item": [30, 10, 20, 20, 10], "t": [3, 1, 2, 1, 2]}),
                   tmp_path / "train.parquet")
    pq.write_table(pa.table({"sid": [1, 1], "item": [10, 99], "t": [1, 2]}), tmp_path / "test.parquet")
    bench = SessionBenchmark.from_files(tmp_path / "train.parquet", tmp_path / "test.parquet", session="sid",
                                        item="item", time="t", name="mine")
    # ids by first appearance in the file (30, 10, 20), clicks in time order within a session
    assert bench.item_ids.to_external([0, 1, 2, 3]) == [30, 10, 20, 99]
    assert bench.name == "mine" and bench.train.to_lists() == [[1, 2, 0], [2, 1]]
    assert bench.test_prefixes.to_lists() == [[1]] and bench.test_targets.tolist() == [3]


def test_bad_input_says_what_is_wrong(tmp_path, files):
    train, test = files
    with pytest.raises(DataValidationError, match="session"):
        SessionBenchmark.from_files(train, test, session="user")              # no such column
    with pytest.raises(FileNotFoundError):
        SessionBenchmark.from_files(train, tmp_path / "missing.csv")
    (tmp_path / "single.csv").write_text("session_id,item_id,timestamp\na,x,1\nb,y,2\n")
    with pytest.raises(ValueError, match="no session has two clicks"):
        SessionBenchmark.from_files(train, tmp_path / "single.csv")
    (tmp_path / "empty.csv").write_text("session_id,item_id,timestamp\n")
    with pytest.raises((ValueError, DataValidationError), match="empty.csv"):
        SessionBenchmark.from_files(tmp_path / "empty.csv", test)


def test_cli_evaluate_takes_train_and_test_files(files, tmp_path):
    runner = CliRunner()
    out = tmp_path / "table.md"
    result = runner.invoke(app, ["evaluate", "--train", str(files[0]), "--test", str(files[1]), "--model", "pop",
                                 "--no-tune", "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert "| train | pop |" in out.read_text()
    result = runner.invoke(app, ["evaluate", "--train", str(files[0])])
    assert result.exit_code == 2 and "--train and --test" in result.output
    result = runner.invoke(app, ["evaluate", "--train", str(files[0]), "--test", str(files[1]),
                                 "--session-column", "user"])
    assert result.exit_code == 2 and result.output.startswith("error:"), result.output


def test_cli_train_emde_on_files(files, tmp_path):
    out = tmp_path / "emde.npz"
    result = CliRunner().invoke(app, ["train", "emde", "--train", str(files[0]), "--test", str(files[1]), "-o", str(out),
                                      "--epochs", "1", "--hidden", "16", "--n-sketches", "2", "--no-validate",
                                      "--input", "last:cleora:1", "--output-source", "cleora:1"])
    assert result.exit_code == 0, result.output
    assert "HR@20=" in result.output and out.exists()


def test_cli_train_emde_chooses_epochs_on_validation_then_refits(tmp_path):
    rng = np.random.default_rng(0)
    for name, n in (("train", 80), ("test", 10)):
        rows = ["session_id,item_id,timestamp"]
        for s in range(n):
            start = int(rng.integers(0, 12))
            rows += [f"{name}{s},item{(start + j) % 15},{1000 * s + j}" for j in range(int(rng.integers(2, 6)))]
        (tmp_path / f"{name}.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "emde.npz"
    result = CliRunner().invoke(app, ["train", "emde", "--train", str(tmp_path / "train.csv"), "--test",
                                      str(tmp_path / "test.csv"), "-o", str(out), "--epochs", "2", "--hidden", "16",
                                      "--n-sketches", "2", "--batch-size", "32", "--input", "last:cleora:1",
                                      "--output-source", "cleora:1"])
    assert result.exit_code == 0, result.output
    chosen = int(result.output.split("best epoch on validation: ")[1].split()[0])
    assert chosen in (1, 2) and "validation MRR@20" in result.output
    assert result.output.count("  epoch ") == 2 + chosen                  # the probe's 2 epochs, then the refit's
    assert out.with_suffix(".validation.ckpt.npz").exists() and out.exists()
