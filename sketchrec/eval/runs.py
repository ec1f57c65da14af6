"""Result files of seeded training runs, written and read back into tables: the SR-GNN / TAGNN
adjacency augmentation runs (benchmarks/srgnn_augmentation.py) — their training recipes, one JSON
result (`run_result`) and one `.ranks.npz` of per-test-prefix ranks per run — summarised as mean ±
std over seeds, with paired tests of each variant against Base of the same seed
(`sketchrec.eval.significance`) and a figure of the gains; and the SR-GNN sketchrec vs RecBole
speed / quality page (`recbole_page`, benchmarks/srgnn_vs_recbole.py).
"""

from __future__ import annotations

import json
import math
import os
import platform
from pathlib import Path

import numpy as np

from sketchrec.eval.metrics import session_metrics
from sketchrec.eval.report import machine_line, markdown_table, mean_std, peak_rss_mib, utc_now
from sketchrec.eval.significance import compare_ranks, paired_t
from sketchrec.precision import cpu_summary

MODEL_STYLE = {"srgnn": ("SR-GNN", "tab:blue"), "tagnn": ("TAGNN", "tab:orange")}   # figure name, colour
LABELS = {"base": "Base", "blur": "Blur", "i2i": "i2i+Blur", "gmm": "GMM+Blur", "kmeans": "KMeans+Blur",
          "categories": "Categories+Blur"}
PUBLISHED = {  # HR@20 / MRR@20. Diginetica: thesis Tables 7.1 / 7.6; YooChoose 1/64: the SR-GNN and TAGNN papers
    ("diginetica", "srgnn", "base"): (50.71, 17.75), ("diginetica", "srgnn", "i2i"): (51.18, 18.05),
    ("diginetica", "srgnn", "blur"): (51.11, 17.75),
    ("diginetica", "srgnn", "kmeans"): (51.12, 18.06),
    ("diginetica", "tagnn", "base"): (50.34, 17.66), ("diginetica", "tagnn", "gmm"): (51.13, 18.05),
    ("yoochoose1-64", "srgnn", "base"): (70.57, 30.94), ("yoochoose1-64", "tagnn", "base"): (71.02, 31.12)}

OVERRIDES = ("epochs", "patience", "lr_decay_every")        # recipe settings a command line may override


def recipe_settings(recipe: dict, variant: str, overrides: dict | None = None) -> dict:
    """The estimator's settings for a variant under a training recipe — {"model": settings of
    every run, "augmented": what runs with an augmentation change, ...} — with the `overrides`
    that are not None (e.g. a command line's --epochs).

    >>> recipe_settings({"model": {"l2": 1e-5, "epochs": 20}, "augmented": {"l2": 1e-6}}, "i2i", {"epochs": 3})
    {'l2': 1e-06, 'epochs': 3}
    """
    settings = {**recipe["model"], **(recipe["augmented"] if variant != "base" else {})}
    settings.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return settings


def refit_epochs(results: Path, names) -> tuple[int, str] | None:
    """The epoch count of a refit run: the best epoch of the first validation run among `names`
    (result file stems, in order of preference) found in `results`, and that file's name; None
    when there is none."""
    for name in names:
        path = Path(results) / f"{name}.json"
        if path.exists():
            return json.loads(path.read_text())["best_epoch"], path.name
    return None


def save_ranks(path: Path, ranks: np.ndarray) -> None:
    """A run's per-test-prefix ranks (`.ranks.npz`, ~100 KB), kept for the paired tests."""
    np.savez_compressed(path, ranks=ranks.astype(np.uint16 if ranks.max() < 65536 else np.int32))


def run_result(fields: dict, model, augmentation, ranks: np.ndarray, *, fit_s: float, score_s: float,
               source_s: float) -> dict:
    """The JSON result of one augmentation run, as `augmentation_report` reads it: `fields`
    (protocol, epochs_from, model, variant, source, seed, dataset, recipe, recipe_overrides; the
    source is dropped for Base and Blur), then the AdjacencyAugmentation's settings (or None), the
    test metrics of `ranks`, the fitted model's best epoch, history and settings, the timings,
    peak RSS and the machine."""
    aug = augmentation
    fields = {**fields, "source": fields["source"] if aug is not None and fields["variant"] != "blur" else None}
    return {**fields, "blur_mode": aug.blur_mode if aug is not None and aug.blur else None,
            "augmentation": None if aug is None else {
                "name": aug.name, "blur_mode": aug.blur_mode, "p_blur": aug.p_blur, "blur_mean": aug.blur_mean,
                "blur_std": aug.blur_std, "p_edge": aug.p_edge, "n_clusters": aug.n_clusters,
                "gmm_init": aug.gmm_init},
            "test": {k: v for k, v in session_metrics(ranks, ks=(10, 20)).items() if "@" in k},
            "best_epoch": model.best_epoch_, "history": model.history_, "fit_s": fit_s, "test_score_s": score_s,
            "n_test": int(len(ranks)),
            "params": {**model.get_params(), "bf16": model.bf16_, "bf16_attention": model.bf16_attention_},
            "source_s": source_s, "peak_rss_mib": peak_rss_mib(),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores", "cpu": cpu_summary(), "when": utc_now()}


def run_name(model: str, variant: str, source: str, seed: int, dataset: str, protocol: str = "validation",
             recipe: str = "ours", blur_mode: str = "session") -> str:
    """The file stem of a run's result: dataset, model, variant, vector source, recipe/blur tags, seed, protocol."""
    src = "" if variant in ("base", "blur") else f"-{source}"
    tags = "" if recipe == "ours" else f"-{recipe}"
    tags += "-cellblur" if variant != "base" and blur_mode == "cell" else ""
    return f"{dataset}-{model}-{variant}{src}{tags}-s{seed}" + ("-refit" if protocol == "refit" else "")


def run_key(r: dict) -> tuple:
    """(model, protocol, recipe, variant, source, blur mode) of a result; runs before the recipes
    and blur modes existed used today's settings and Blur per session."""
    blur = r.get("blur_mode", "session" if r["variant"] != "base" else None)
    return r["model"], r.get("protocol", "validation"), r.get("recipe", "ours"), r["variant"], r["source"], blur


def variant_label(variant: str, blur: str | None) -> str:
    return LABELS[variant] + (f" (per {blur})" if blur else "")


def paired_ranks(results: Path, dataset: str, key: tuple, seed: int):
    """The per-test-prefix ranks of a variant's run (`run_key`) and of Base of the same recipe and
    seed, or None."""
    model, protocol, recipe, variant, source, blur = key
    files = [Path(results) / f"{run_name(model, v, src or '', seed, dataset, protocol, recipe, b)}.ranks.npz"
             for v, src, b in ((variant, source, blur or "session"), ("base", None, "session"))]
    if not all(f.exists() for f in files):
        return None
    return tuple(np.load(f)["ranks"].astype(np.int64) for f in files)


def paired_tests(results: Path, dataset: str, key: tuple, seed: int) -> dict | None:
    """`compare_ranks` of a variant's run against Base of the same recipe and seed, per test
    prefix (HR@20 / MRR@20 differences with 95% half-widths, McNemar and Wilcoxon p), or None."""
    ranks = paired_ranks(results, dataset, key, seed)
    return None if ranks is None else compare_ranks(*ranks, k=20)


def plot_deltas(results: Path, groups: list[tuple[tuple, list[dict]]], dataset: str, path: Path) -> bool:
    """Each variant's gain over Base of the same seed, HR@20 and MRR@20 in points: one dot per
    seed with the per-prefix 95% interval of that paired difference (normal approximation over
    the test prefixes), and the thesis's gain (its variant minus its Base) where it reports both.
    groups: (`run_key`, runs) in table order, refit variants only.
    Returns False when there is nothing to plot."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = {}                 # (model, recipe, variant, source, blur) -> per seed {metric: (delta, half-width)}
    for key, rs in groups:
        model, _, recipe, variant, source, blur = key
        for r in sorted(rs, key=lambda r: r["seed"]):
            tests = paired_tests(results, dataset, key, r["seed"])
            if tests is not None:
                points.setdefault((model, recipe, variant, source, blur), []).append(
                    {m: (100 * tests[m], 100 * tests[f"{m}_ci"]) for m in ("HR@20", "MRR@20")})
    order = list(points)
    if not order:
        return False
    # wide enough for the title and legend even with one or two variants
    fig, axes = plt.subplots(2, 1, figsize=(max(9.0, 0.9 * len(order) + 2), 6.5), sharex=True)
    thesis_shown = False
    for ax, metric, col in zip(axes, ("HR@20", "MRR@20"), (0, 1)):
        for x, g in enumerate(order):
            pts = points[g]
            offsets = np.linspace(-0.15, 0.15, len(pts)) if len(pts) > 1 else [0.0]
            for off, p in zip(offsets, pts):
                ax.errorbar(x + off, p[metric][0], yerr=p[metric][1], fmt="o", ms=4, capsize=2,
                            color=MODEL_STYLE[g[0]][1])
            if len(pts) > 1:
                ax.hlines(np.mean([p[metric][0] for p in pts]), x - 0.3, x + 0.3, color="black", lw=1.5)
            model, _, variant, _, _ = g
            ours, theirs = PUBLISHED.get((dataset, model, variant)), PUBLISHED.get((dataset, model, "base"))
            if ours and theirs:
                ax.plot(x, ours[col] - theirs[col], marker="x", ms=9, mew=2, color="tab:red", ls="none")
                thesis_shown = True
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_ylabel(f"Δ {metric} vs Base (points)")
        ax.grid(axis="y", alpha=0.3)
    axes[-1].set_xlim(-0.8, len(order) - 0.2)
    axes[-1].set_xticks(range(len(order)))
    axes[-1].set_xticklabels([MODEL_STYLE[m][0] + (f" {r}" if r != "ours" else "") + f"\n{variant_label(v, b)}"
                              + (f"\n({s})" if s else "") for m, r, v, s, b in order], fontsize=8)
    handles = [plt.Line2D([], [], marker="o", ls="none", color=colour, label=f"{name}, one seed ± 95% (per prefix)")
               for model, (name, colour) in MODEL_STYLE.items() if model in {g[0] for g in order}]
    several_seeds = any(len(pts) > 1 for pts in points.values())
    handles += [plt.Line2D([], [], color="black", label="mean over seeds")] if several_seeds else []
    handles += [plt.Line2D([], [], marker="x", ls="none", mew=2, color="tab:red",
                           label="thesis (variant − its Base)")] if thesis_shown else []
    axes[0].set_title(f"{dataset}: adjacency augmentation, gain over Base of the same seed (refit protocol)")
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.legend(handles=handles, fontsize=7, loc="lower center", ncol=4, frameon=False)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def augmentation_report(results: Path, out_dir: Path) -> str:
    """The page docs/benchmarks/srgnn_augmentation.md from every run result in `results`, a table per
    dataset; writes the gain figures (srgnn_augmentation_DATASET.png) into `out_dir` and returns the
    page (no final newline)."""
    results, out_dir = Path(results), Path(out_dir)
    rows = [json.loads(p.read_text()) for p in sorted(results.glob("*.json"))]
    lines = ["# SR-GNN / TAGNN adjacency augmentation", "",
             "Command: `python benchmarks/srgnn_augmentation.py --model MODEL --variants ... --seeds ... "
             "[--protocol refit] [--recipe thesis]`, then `--report`. All test prefixes are ranked against every "
             "item.", "",
             "- **recipe**: `ours` = the settings every earlier row used (early stopping on validation MRR@20, "
             "Blur per session); `thesis` = the MSc thesis's appendix A.2 (early stopping on validation loss, "
             "L2 1e-6 for augmented models, Blur per cell as Eq. 6.1; docs/srgnn_thesis_recipe.md). "
             "The variant says which Blur a row used: per cell (Eq. 6.1) or per session.",
             "- **validation**: training sessions minus the last 10% (by time) train; those 10% select the epoch "
             "(early stopping, by the recipe's criterion).",
             "- **refit**: all training sessions train for the epoch count the validation run selected (the seed's "
             "own, else seed 0's; or, with `--epochs-from base`, the Base validation run's). `s/epoch` depends on the "
             "threads and on what else the machine ran. `best test epoch` is a diagnostic only — the test metrics of the best epoch "
             "*on the test set* (max over epochs of each metric), what the official SR-GNN script prints; "
             "nothing is selected by it.", ""]
    for dataset in sorted({r["dataset"] for r in rows}):
        lines += [f"## {dataset}", "",
                  "| model | protocol | recipe | variant | source | seeds | HR@20 | MRR@20 | HR@10 | MRR@10 | "
                  "epochs (best) | threads | s/epoch | best test epoch HR@20 / MRR@20 | published HR@20 / MRR@20 | Δ vs Base, same seeds (p) |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        groups: dict = {}
        for r in rows:
            if r["dataset"] == dataset:
                groups.setdefault(run_key(r), []).append(r)
        order = lambda kv: (kv[0][0], kv[0][1], kv[0][2], list(LABELS).index(kv[0][3]), str(kv[0][4]),  # noqa: E731
                            str(kv[0][5]))
        ordered = sorted(groups.items(), key=order)
        for key, rs in ordered:
            model, protocol, recipe, variant, source, blur = key
            test = lambda metric: mean_std([r["test"][metric] for r in rs])  # noqa: E731
            epochs = ", ".join(f"{len(r['history'])} ({r['best_epoch']})" for r in rs)
            chosen_by = {(c["model"], c["variant"]) for c in (json.loads((results / r["epochs_from"]).read_text())
                                                              for r in rs if r.get("epochs_from")
                                                              and (results / r["epochs_from"]).exists())}
            if chosen_by - {(model, variant)}:
                epochs += " by " + "/".join((f"{m} " if m != model else "") + LABELS[v]
                                            for m, v in sorted(chosen_by)) + " validation"
            threads = "/".join(sorted({str(r["params"].get("threads") or os.cpu_count()) for r in rs}))
            sec = np.mean([np.mean([h["seconds"] for h in r["history"]]) for r in rs])
            curves = [[h["test_curve"] for h in r["history"] if "test_curve" in h] for r in rs]
            best_test = "—"
            if all(curves):
                best_test = (mean_std([max(c["HR@20"] for c in cs) for cs in curves]) + " / "
                             + mean_std([max(c["MRR@20"] for c in cs) for cs in curves]))
            pub = PUBLISHED.get((dataset, model, variant))
            delta = "—"
            base = {r["seed"]: r for r in groups.get((model, protocol, recipe, "base", None, None), [])}
            paired = [(r, base[r["seed"]]) for r in rs if r["seed"] in base and variant != "base"]
            if paired:
                parts = []
                for name, metric in (("HR", "HR@20"), ("MRR", "MRR@20")):
                    diffs = [100 * (r["test"][metric] - b["test"][metric]) for r, b in paired]
                    part = f"{name} {np.mean(diffs):+.2f}"
                    if len(diffs) > 1:
                        p_seeds = paired_t([r["test"][metric] for r, _ in paired], [b["test"][metric] for _, b in paired])
                        part += f" ± {np.std(diffs, ddof=1):.2f} (paired t-test over seeds p={p_seeds:.2g})"
                    parts.append(part)
                delta = ", ".join(parts)
                tests = [t for t in (paired_tests(results, dataset, key, r["seed"]) for r, _ in paired) if t is not None]
                if tests:       # per-prefix paired tests: exact McNemar on hits, Wilcoxon on reciprocal ranks
                    delta += (" (per prefix: McNemar on hits@20 p=" + ", ".join(f"{t['mcnemar_p']:.2g}" for t in tests)
                              + "; Wilcoxon on RR@20 p=" + ", ".join(f"{t['wilcoxon_p']:.2g}" for t in tests) + ")")
            precision = {("bf16 autocast" if r["params"].get("bf16") else "bf16 attention GEMMs"
                          if r["params"].get("bf16_attention") else "") for r in rs} - {""}
            label = model + (f" ({'/'.join(sorted(precision))})" if precision else "")
            lines.append(f"| {label} | {protocol} | {recipe} | {variant_label(variant, blur)} | {source or '—'} | "
                         f"{len(rs)} | {test('HR@20')} | "
                         f"{test('MRR@20')} | {test('HR@10')} | {test('MRR@10')} | {epochs} | {threads} | {sec:.0f} | {best_test} | "
                         f"{'%.2f / %.2f' % pub if pub else '—'} | {delta} |")
        lines.append("")
        figure = out_dir / f"srgnn_augmentation_{dataset}.png"
        if plot_deltas(results, [(k, rs) for k, rs in ordered if k[1] == "refit" and k[3] != "base"], dataset, figure):
            lines += [f"![gain over Base per seed, {dataset}]({figure.name})", ""]
    return "\n".join(lines)



def recbole_page(results: dict, args, batch_size: int, speed_template: str, quality_template: str,
                 command_text: str) -> list[str]:
    """benchmarks/srgnn_vs_recbole.py's page, as lines: the speed table (time per batch, of which session
    graphs, seconds per epoch extrapolated from `results["meta"]["n_train"]` pairs in batches of
    `batch_size`, peak RSS) of sketchrec (and with bf16 autocast if `args.bf16`) and RecBole as shipped and
    with anomaly detection off, the RecBole / ours ratios (also stored into `results`), and with
    `args.epochs` the quality table (HR@20 / MRR@20, reused runs marked). `results`: "meta", "speed" and
    "quality" runs by key (ours, ours_bf16, recbole, recbole_anomaly_off) as the peers report them; `args`:
    threads, warmup, batches, epochs, lr_decay, bf16; the templates' prose formatted with the settings."""
    meta, speed = results["meta"], results["speed"]
    o, ob, p, pf = speed["ours"], speed.get("ours_bf16"), speed["recbole"], speed["recbole_anomaly_off"]
    check = p["check"]
    n_pairs, bs = meta["n_train"], batch_size
    per_epoch = math.ceil(n_pairs / bs)
    rows = []
    for who, r, graph_key in (("sketchrec", o, "graphs_s"),
                              *((("sketchrec, bf16 autocast", ob, "graphs_s"),) if args.bf16 else ()),
                              (f"RecBole {p['recbole']} as shipped (autograd anomaly detection on)", p, "get_slice_s"),
                              (f"RecBole {p['recbole']}, anomaly detection turned off", pf, "get_slice_s")):
        graphs = r.get("breakdown", {}).get(graph_key)
        rows.append([who, f"{r['s_per_batch'] * 1e3:.1f} ms", "?" if graphs is None else
                     f"{graphs / r['batches'] * 1e3:.1f} ms", f"{r['s_per_batch'] * per_epoch:,.0f}", r["batches"],
                     f"{r['peak_rss_mb']:,.0f}"])
    lines = markdown_table(["", "time / batch", "of which session graphs",
                            f"s / epoch (extrapolated, {per_epoch:,} batches)", "timed batches", "peak RSS MiB"], rows)
    ratio, ratio_off = p["s_per_batch"] / o["s_per_batch"], pf["s_per_batch"] / o["s_per_batch"]
    results["speed_ratio_recbole_over_ours"] = ratio
    results["speed_ratio_recbole_anomaly_off_over_ours"] = ratio_off
    bf16_line = []
    if args.bf16:
        rb, rb_off = p["s_per_batch"] / ob["s_per_batch"], pf["s_per_batch"] / ob["s_per_batch"]
        results["speed_ratio_recbole_over_ours_bf16"] = rb
        results["speed_ratio_recbole_anomaly_off_over_ours_bf16"] = rb_off
        bf16_line = [f"RecBole / ours with bf16 autocast: **{rb:.2f}x** as shipped, **{rb_off:.2f}x** with "
                     "anomaly detection off.", ""]
    text = ["# SR-GNN training: sketchrec vs RecBole 1.2.1", "",
            f"{machine_line()}; torch {p['torch']}; {args.threads} threads for both "
            "(torch.set_num_threads, OMP/MKL_NUM_THREADS)", "",
            "Command: " + command_text, "",
            speed_template.strip().format(warmup=args.warmup, batches=args.batches, n_pairs=n_pairs,
                                          meta=meta, check=check), "",
            *lines, "",
            f"RecBole / ours time per batch: **{ratio:.2f}x** as shipped, **{ratio_off:.2f}x** with "
            "anomaly detection off.", "", *bf16_line]
    if args.epochs:
        qo, qp = results["quality"]["ours"], results["quality"]["recbole"]
        qrows = [("sketchrec", qo)] + ([("sketchrec, bf16 autocast", results["quality"]["ours_bf16"])]
                                       if args.bf16 else []) + [(f"RecBole {qp['recbole']}", qp)]
        qlines = markdown_table(["", "epochs", "training pairs", "fit s", "HR@20", "MRR@20", "peak RSS MiB", "run"], [
            [who, r["epochs"], f"{r['pairs']:,}", f"{r['fit_seconds']:,.0f}", f"{r['HR@20']:.4f}", f"{r['MRR@20']:.4f}",
             f"{r['peak_rss_mb']:,.0f}", f"{r['when']}" + (" (reused)" if r["reused"] else "")
             + (f", model code {r['code']}" if r.get("code") else "")] for who, r in qrows])
        text += [quality_template.strip().format(epochs=args.epochs, lr_decay=args.lr_decay,
                                                 anomaly="on" if qp["anomaly_detection"] else "off"), "",
                 *qlines, ""]
    return text
