"""The `sketchrec` command line, through typer's runner (same code path as the console script)."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from sketchrec.cli import app

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
runner = CliRunner()
needs_data = pytest.mark.skipif(not SHARED.exists(), reason=f"{SHARED} not present")


@pytest.fixture(autouse=True)
def data_dir(monkeypatch):
    monkeypatch.setenv("SKETCHREC_DATA", str(SHARED))


@pytest.mark.parametrize("args", [[], ["datasets"], ["data"], ["evaluate"], ["demo"], ["train", "emde"],
                                  ["data", "inspect"], ["datasets", "info"]])
def test_help_everywhere(args):
    result = runner.invoke(app, [*args, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_data_inspect_reports_bad_rows(tmp_path):
    path = tmp_path / "clicks.csv"
    path.write_text("sid,item,ts\n1,a,2024-01-01 10:00:00\n1,b,2024-01-01 10:02:00\n"
                    "2,,2024-01-01 11:00:00\n2,c,2024-01-01 11:01:00\n3,a,garbage\n")
    result = runner.invoke(app, ["data", "inspect", str(path), "--user", "sid", "--item", "item",
                                 "--timestamp", "ts"])
    assert result.exit_code == 0, result.output
    assert "rows kept" in result.output and "skipped 2 bad rows" in result.output
    result = runner.invoke(app, ["data", "inspect", str(path), "--user", "sid", "--item", "item",
                                 "--timestamp", "ts", "--on-bad-rows", "raise"])
    assert result.exit_code == 2
    assert "line 4" in result.output and "'item'" in result.output


@needs_data
def test_datasets_list_and_info():
    result = runner.invoke(app, ["datasets", "list"])
    assert result.exit_code == 0, result.output
    for name in ("diginetica", "yoochoose1-64", "retailrocket", "movielens-100k"):
        assert name in result.output
    result = runner.invoke(app, ["datasets", "info", "diginetica"])
    assert result.exit_code == 0 and "GCE-GNN" in result.output


@needs_data
def test_evaluate_on_real_benchmark(tmp_path):
    out = tmp_path / "table.md"
    result = runner.invoke(app, ["evaluate", "--dataset", "yoochoose1-64", "--model", "sr",
                                 "--model", "pop", "--no-tune", "--max-test-pairs", "3000",
                                 "--output", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "| yoochoose1-64 | sr |" in text and "| yoochoose1-64 | pop |" in text
    sr_row = next(line for line in text.splitlines() if "| sr |" in line)
    pop_row = next(line for line in text.splitlines() if "| pop |" in line)
    hr20 = lambda row: float(row.split("|")[5])  # noqa: E731  (dataset, model, HR@10, MRR@10, HR@20)
    assert hr20(sr_row) > 3 * hr20(pop_row) > 0


def test_embed_command_writes_embeddings(tmp_path):
    path = tmp_path / "baskets.tsv"
    path.write_text("user\titems\nu1\ta b c\nu2\tb c\nu3\tc d\n")
    out = tmp_path / "emb"
    result = runner.invoke(app, ["embed", str(path), "-o", str(out), "-c", "transient::user",
                                 "-c", "complex::reflexive::items", "--dim", "8", "--iterations", "2"])
    assert result.exit_code == 0, result.output
    from sketchrec.embeddings import Embeddings
    emb = Embeddings.load(out)
    assert sorted(emb.ids.keys.to_pylist()) == ["items:a", "items:b", "items:c", "items:d"]
    assert emb.dim == 8 and emb.provenance["iterations"] == 2


@needs_data
def test_eval_nodeclf_command():
    result = runner.invoke(app, ["eval", "nodeclf", "--dataset", "cora", "--dim", "64", "--iterations", "3"])
    assert result.exit_code == 0, result.output
    assert "accuracy" in result.output


@needs_data
def test_eval_linkpred_command():
    result = runner.invoke(app, ["eval", "linkpred", "--dataset", "email-eu-core", "--dim", "32",
                                 "--iterations", "2"])
    assert result.exit_code == 0, result.output
    assert "MRR" in result.output and "HR@10" in result.output


@needs_data
def test_train_emde_saves_a_loadable_model(tmp_path):
    from sketchrec.models import EMDE, Recommender
    out = tmp_path / "emde.npz"
    result = runner.invoke(app, ["train", "emde", "--dataset", "yoochoose1-64", "-o", str(out), "--epochs", "1",
                                 "--hidden", "64", "--n-sketches", "4", "--no-validate", "--max-test-pairs",
                                 "2000", "--input", "last:cleora:1", "--output-source", "cleora:1"])
    assert result.exit_code == 0, result.output
    hr20 = float(result.output.split("HR@20=")[1].split()[0])
    assert hr20 > 20, result.output          # popularity reaches ~7% here
    model = Recommender.load(out)
    assert isinstance(model, EMDE) and model.inputs == ("last:cleora:1",)
    assert out.with_suffix(".ckpt.npz").exists()
