"""The `sketchrec` command line, through typer's runner (same code path as the console script)."""

import pytest
from typer.testing import CliRunner

from sketchrec.cli import app

runner = CliRunner()

@pytest.mark.parametrize("args", [[], ["datasets"], ["data"], ["evaluate"], ["demo"], ["train", "emde"],
                                  ["data", "inspect"], ["datasets", "info"], ["similar"], ["corrupt"], ["serve"]])
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


def test_datasets_list_and_info():
    result = runner.invoke(app, ["datasets", "list"])
    assert result.exit_code == 0, result.output
    for name in ("diginetica", "yoochoose1-64", "retailrocket", "movielens-100k"):
        assert name in result.output
    result = runner.invoke(app, ["datasets", "info", "diginetica"])
    assert result.exit_code == 0 and "GCE-GNN" in result.output


@pytest.mark.needs_dataset("yoochoose1-64")
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
    from sketchrec.data.embeddings import Embeddings
    emb = Embeddings.load(out)
    assert sorted(emb.ids.keys.to_pylist()) == ["items:a", "items:b", "items:c", "items:d"]
    assert emb.dim == 8 and emb.provenance["iterations"] == 2


@pytest.mark.needs_dataset("cora")
def test_eval_nodeclf_command():
    result = runner.invoke(app, ["eval", "nodeclf", "--dataset", "cora", "--dim", "64", "--iterations", "3"])
    assert result.exit_code == 0, result.output
    assert "accuracy" in result.output


@pytest.mark.needs_dataset("email-eu-core")
def test_eval_linkpred_command():
    result = runner.invoke(app, ["eval", "linkpred", "--dataset", "email-eu-core", "--dim", "32",
                                 "--iterations", "2"])
    assert result.exit_code == 0, result.output
    assert "MRR" in result.output and "HR@10" in result.output


@pytest.mark.needs_dataset("yoochoose1-64")
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


def test_similar_items_and_groups(tmp_path):
    import numpy as np

    from sketchrec.data.idmap import IdMap
    from sketchrec.data.embeddings import Embeddings
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 8))
    vectors = np.repeat(centres, 4, axis=0) + 0.05 * rng.normal(size=(12, 8))
    ids = [f"sku{i}" for i in range(12)]
    Embeddings(vectors.astype(np.float32), IdMap(ids, "item")).save(tmp_path / "emb")
    (tmp_path / "groups.csv").write_text("id,product\n" + "".join(f"sku{i},p{i // 4}\n" for i in range(12)))
    result = runner.invoke(app, ["similar", str(tmp_path / "emb"), "sku0", "nope", "-k", "3",
                                 "-o", str(tmp_path / "out.csv")])
    assert result.exit_code == 0, result.output
    assert "unknown item id" in result.output and "nope" in result.output
    rows = (tmp_path / "out.csv").read_text().splitlines()
    assert len(rows) == 4 and rows[1].split(",")[2].strip('"') == "sku0"      # itself first
    assert all(r.split(",")[2].strip('"') in {"sku1", "sku2", "sku3", "sku0"} for r in rows[1:])
    result = runner.invoke(app, ["similar", str(tmp_path / "emb"), "sku5", "-k", "2", "--groups",
                                 str(tmp_path / "groups.csv"), "--group-column", "product", "--backend", "hnsw",
                                 "--save-index", str(tmp_path / "index"), "-o", str(tmp_path / "g.csv")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "g.csv").read_text().splitlines()[1].split(",")[2].strip('"') == "p1"
    assert (tmp_path / "index" / "index.faiss").exists()
    result = runner.invoke(app, ["similar", str(tmp_path / "emb"), "sku0", "-k", "0"])
    assert result.exit_code == 2


def test_serve_refuses_a_broken_bundle(tmp_path):
    (tmp_path / "b").mkdir()
    result = runner.invoke(app, ["serve", str(tmp_path / "b")])
    assert result.exit_code == 2 and "not a sketchrec bundle" in " ".join(result.output.split())


def test_demo_offline_with_nothing_cached_fails_in_one_line(tmp_path, monkeypatch):
    import socket
    with socket.socket() as s:          # a port nothing listens on: the mirror is "offline"
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}/"
    monkeypatch.setenv("SKETCHREC_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("SKETCHREC_MIRROR", closed)
    result = runner.invoke(app, ["demo", "--output", str(tmp_path / "results.md")])
    assert result.exit_code == 1
    error = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "sketchrec datasets fetch diginetica" in error[0], result.output
    assert not (tmp_path / "results.md").exists()
