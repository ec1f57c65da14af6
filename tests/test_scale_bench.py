"""sketchrec.eval.scale: one size measured end to end on a tiny log, and the page with its figure."""

import json

from sketchrec.eval import scale
from sketchrec.models.emde import EMDE


def small(**kw):
    return EMDE(**{**dict(inputs=("all:cleora:1", "last:cleora:0"), outputs=("cleora:1",), n_sketches=3, n_bits=4,
                          cleora_dim=16, epochs=1, progress=False, threads=1), **kw, "hidden": 16})


def test_measure_one_size_and_write_the_page(tmp_path):
    run = scale.measure_size(small, 20_000, tmp_path / "w", score_sessions=500, buffer_events=5_000)
    assert abs(run["events"] - 20_000) < 1_000 and run["n_items"] == 10_000
    assert run["examples"] == run["events"] - run["sessions"]          # one pair per click but the first
    assert run["scored"] == 500 and run["profile_rows"] == run["sessions"]
    assert run["events_per_s"] > 0 and run["epoch_cpu_s"] > 0 and run["peak_rss_mib"] >= run["rss_after_scan_mib"] > 0
    assert not (tmp_path / "w/profiles.parquet").exists()
    page = tmp_path / "emde_scale.md"
    scale.write_scale_page([run, {**run, "events": 10 * run["events"], "events_per_cpu_s": run["events_per_cpu_s"] / 2}], page)
    text = page.read_text()
    assert "| events | sessions |" in text and "events x0.50" in text
    quality = {"mode": "stream", "metrics": {"HR@20": 0.4321, "MRR@20": 0.17, "HR@10": 0.3, "MRR@10": 0.16},
               "fit_s": 1.0, "peak_rss_mib": 3.0, "history": [{}, {}], "params": {"seed": 0}}
    profiles = {"users": 10, "events": 50, "n_items": 3, "codes_s": 1.0, "profiles_s": 2.0, "profile_bytes": 1e6,
                "peak_rss_mib": 5.0}
    scale.write_scale_page([run], page, profiles=[profiles], quality=[quality])
    text = page.read_text()
    assert "## Profiles of every user" in text and "| stream | 0 | 43.21 | 17.00 |" in text
    assert page.with_suffix(".png").stat().st_size > 1000 and len(json.loads(page.with_suffix(".json").read_text())) == 1


def test_a_measure_killed_after_its_epoch_resumes_without_training_again(tmp_path, monkeypatch):
    def killed(model, queries):
        raise KeyboardInterrupt("killed while scoring")
    real = scale._recommend_all
    monkeypatch.setattr(scale, "_recommend_all", killed)
    try:
        scale.measure_size(small, 20_000, tmp_path / "w", score_sessions=500, buffer_events=5_000)
    except KeyboardInterrupt:
        pass
    recorded = json.loads((tmp_path / "w/measure.json").read_text())
    assert recorded["epoch_cpu_s"] > 0 and "score_s" not in recorded and recorded["log_reused"] is False
    assert (tmp_path / "w/fit.ckpt.npz").exists() and (tmp_path / "w/fit.ckpt.npz.codes.npz").exists()
    monkeypatch.setattr(scale, "_recommend_all", real)
    run = scale.measure_size(small, 20_000, tmp_path / "w", score_sessions=500, buffer_events=5_000)
    assert run["epoch_s"] == recorded["epoch_s"] and run["codes_s"] == recorded["codes_s"]   # not trained again
    assert run["scored"] == 500 and run["generate_s"] == recorded["generate_s"] and run["log_reused"] is False
    assert run["peak_rss_mib"] >= json.loads((tmp_path / "w/peak_rss.json").read_text())["peak_rss_mib"] > 0


def test_the_peers_on_the_same_log_and_their_table(tmp_path):
    from sketchrec.models import VSKNN
    vsknn = scale.measure_peer("vsknn", lambda: VSKNN(neighbours=20, sample_size=50, threads=1), 20_000, tmp_path / "w",
                               score_sessions=300)
    assert vsknn["scored"] == 300 and vsknn["fit_s"] > 0 and vsknn["peak_rss_mib"] >= vsknn["rss_after_load_mib"] > 0
    cleora = scale.measure_peer("cleora", None, 20_000, tmp_path / "w", cleora_dim=8)
    assert cleora["events"] == vsknn["events"] and cleora["dim"] == 8 and cleora["fit_s"] > 0
    run = scale.measure_size(small, 20_000, tmp_path / "w", score_sessions=300, buffer_events=5_000)
    page = tmp_path / "emde_scale.md"
    scale.write_scale_page([run], page, peers=[vsknn, cleora], other_cpus={"zen3": [{**run, "cpus": ["AMD EPYC"]}]})
    text = page.read_text()
    assert "## Earlier runs on another machine (zen3): AMD EPYC" in text
    assert "## The other models on the same logs" in text and "| V-SKNN (`vsknn-session`) | " in text
    assert "| Cleora, streamed | " in text and run["cpus"][0] in text


def test_stream_quality_writes_the_log_once_and_resumes_from_its_checkpoint(tmp_path):
    import numpy as np

    from sketchrec.data.benchmark import SessionBenchmark
    from sketchrec.data.idmap import IdMap
    from sketchrec.data.sessions import Sessions
    rng = np.random.default_rng(0)
    starts = rng.integers(0, 30, 300)
    rows = Sessions.from_lists(((starts[:, None] + np.arange(5)) % 30).tolist(), 30)
    bench = SessionBenchmark.from_sessions("cycles", rows.take(np.arange(250)), rows.take(np.arange(250, 300)),
                                           IdMap(np.arange(30)))
    make = lambda: small(epochs=2, n_sketches=4, n_bits=5)  # noqa: E731
    stream = scale.stream_quality(make, bench, "stream", tmp_path / "log", buffer_events=300,
                                  checkpoint=tmp_path / "s.ckpt.npz")
    mtimes = sorted(f.stat().st_mtime_ns for f in (tmp_path / "log").glob("*.parquet"))
    again = scale.stream_quality(make, bench, "stream", tmp_path / "log", buffer_events=300,
                                 checkpoint=tmp_path / "s.ckpt.npz")            # done already: nothing trained
    assert sorted(f.stat().st_mtime_ns for f in (tmp_path / "log").glob("*.parquet")) == mtimes
    assert again["metrics"] == stream["metrics"] and len(again["history"]) == 2
    memory = scale.stream_quality(make, bench, "memory", tmp_path / "unused")
    assert memory["metrics"]["HR@20"] > 0.5 and stream["metrics"]["HR@20"] > 0.5 and stream["cpu"]


def test_quality_summary_says_whether_the_stream_is_within_one_std():
    def run(mode, seed, hr, mrr):
        return {"mode": mode, "params": {"seed": seed}, "history": [{}, {}, {}], "metrics": {"HR@20": hr, "MRR@20": mrr}}
    quality = [run("memory", 0, 0.430, 0.170), run("memory", 1, 0.434, 0.172), run("stream", 0, 0.431, 0.160),
               run("stream", 1, 0.433, 0.162), run("stream", 2, 0.5, 0.5)]
    quality.append({**run("memory", 0, 0.1, 0.1), "history": [{}]})              # one epoch, one seed: no line
    [line] = scale._quality_summary(quality)
    assert line.startswith("- 3 epoch(s), seeds 2 / 3: HR@20 memory 43.20 ± 0.28")
    assert "(difference +2.27: beyond" in line and "MRR@20 memory 17.10 ± 0.14" in line
