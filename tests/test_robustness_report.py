"""The robustness study and its report on real text (AG News / SST-2 subsets), library and CLI."""

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from typer.testing import CliRunner

from sketchrec.cli import app
from sketchrec.data import registry
from sketchrec.robustness.report import NgramFeatures, RobustnessStudy, labelled_dataset, write_report

HAS_WORDNET = Path("/usr/share/wordnet/data.verb").exists()


@pytest.fixture(scope="module")
def ag_news():
    train_texts, y_train, test_texts, y_test = labelled_dataset("ag-news", n_train=800)
    return train_texts, y_train, test_texts[:400], y_test[:400]


@pytest.fixture(scope="module")
def study_results(ag_news):
    study = RobustnessStudy(NgramFeatures(2**16), aspects=["article", "swap", "qwerty"], severities=[1, 30],
                            train_severity=30, probe=HAS_WORDNET, progress=False)
    return {"ag-news": study.run("ag-news", *ag_news)}


@pytest.mark.needs_dataset("ag-news")
def test_labelled_dataset_splits():
    train_texts, y_train, test_texts, y_test = labelled_dataset("ag-news", n_train=800)
    assert len(train_texts) == 800 and np.bincount(y_train).tolist() == [200] * 4
    assert len(test_texts) == 6_800 and not set(train_texts) & set(test_texts)
    assert labelled_dataset("ag-news", n_train=800)[0] == train_texts      # seeded
    with pytest.raises(ValueError, match="unknown dataset"):
        labelled_dataset("imdb")


@pytest.mark.needs_dataset("ag-news")
def test_study_measures_what_corruption_does(study_results):
    res = study_results["ag-news"]
    assert res["clean"] > 0.6                                           # 4 classes: chance is 0.25
    # swapped letters in 30 words per article (nearly every word) cost accuracy; one article barely matters
    assert res["corrupted"]["swap@30"] < res["clean"] - 0.08
    assert res["corrupted"]["qwerty@30"] < res["corrupted"]["qwerty@1"]
    assert abs(res["corrupted"]["article@1"] - res["clean"]) < 0.03
    assert res["changed_share"]["swap@30"] == 1.0
    # training on swapped texts recovers part of the loss on swapped tests
    transfer = np.asarray(res["transfer"])
    assert transfer.shape == (3, 3) and transfer[1, 1] > 0
    assert np.asarray(res["severity_effect"]).shape == (2, 2)
    if HAS_WORDNET:
        assert res["antonym_probe"]["edited"] > 0 and 0 <= res["antonym_probe"]["unchanged"] <= 1


@pytest.mark.needs_dataset("ag-news")
def test_report_writes_tables_and_figures(study_results, tmp_path):
    path = write_report(study_results, tmp_path / "robust.md", command="pytest", model="ngrams")
    text = path.read_text()
    assert "## ag-news" in text and "| qwerty |" in text and "`pytest`" in text
    figures = {p.name for p in (tmp_path / "robust").iterdir()}
    assert {"robustness.png", "ag-news-transfer.png", "ag-news-qwerty-severity.png"} <= figures
    for name in figures:
        assert (tmp_path / "robust" / name).read_bytes()[:4] == b"\x89PNG"
        assert f"robust/{name}" in text
    assert json.loads((tmp_path / "robust.json").read_text())["ag-news"]["clean"] == study_results["ag-news"]["clean"]


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="unknown aspects"):
        RobustnessStudy(NgramFeatures(), aspects=["qwerty", "typos"])
    with pytest.raises(ValueError, match="severities"):
        RobustnessStudy(NgramFeatures(), severities=[0, 1])
    study = RobustnessStudy(NgramFeatures(), aspects=["qwerty"], progress=False, probe=False)
    with pytest.raises(ValueError, match="differ in length"):
        study.run("x", ["a b", "c d"], [0], ["a"], [0])
    with pytest.raises(ValueError, match="two classes"):
        study.run("x", ["a b", "c d"], [1, 1], ["a"], [1])


def _flat(text):
    return " ".join(text.split())


def _csv(path, texts, labels):
    pacsv.write_csv(pa.table({"sentence": texts, "sentiment": [["neg", "pos"][y] for y in labels]}), path)
    return path


@pytest.mark.needs_dataset("sst2")
def test_cli_report_on_user_files(tmp_path):
    sst = registry.load("sst2", split="train")
    rows = np.random.default_rng(0).choice(len(sst), 1_200, replace=False)
    texts, labels = [sst.texts[i] for i in rows], sst.labels[rows]
    train = _csv(tmp_path / "train.csv", texts[:900], labels[:900])
    test = _csv(tmp_path / "test.csv", texts[900:], labels[900:])
    out = tmp_path / "report.md"
    runner = CliRunner()
    result = runner.invoke(app, ["robustness", "report", "--train", str(train), "--test", str(test),
                                 "--text-column", "sentence", "--label-column", "sentiment", "--features", "ngrams",
                                 "--aspect", "swap", "--aspect", "marks", "--severities", "1,3",
                                 "--train-severity", "3", "--no-probe", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "clean accuracy" in result.output and out.exists() and (tmp_path / "report" / "train-transfer.png").exists()
    assert "| swap |" in out.read_text() and "| qwerty |" not in out.read_text()

    bad_column = runner.invoke(app, ["robustness", "report", "--train", str(train), "--test", str(test),
                                     "--text-column", "title", "--features", "ngrams", "-o", str(out)])
    assert bad_column.exit_code == 2 and "no column 'title'" in _flat(bad_column.output)
    missing = runner.invoke(app, ["robustness", "report", "--train", str(tmp_path / "nope.csv"), "--test", str(test),
                                  "--features", "ngrams", "-o", str(out)])
    assert missing.exit_code == 2 and "no such file" in _flat(missing.output)
    neither = runner.invoke(app, ["robustness", "report", "-o", str(out)])
    assert neither.exit_code != 0 and "--dataset" in _flat(neither.output)
    bad_aspect = runner.invoke(app, ["robustness", "report", "--dataset", "sst2", "--aspect", "typos",
                                     "--features", "ngrams", "-o", str(out)])
    assert bad_aspect.exit_code == 2 and "unknown aspects" in _flat(bad_aspect.output)
