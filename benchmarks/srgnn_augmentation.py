"""SR-GNN / TAGNN with adjacency-matrix augmentation on a session benchmark (thesis Tables 7.1 / 7.6).

Every run trains on the training sessions minus the last 10% (by time), keeps the epoch with the
best validation MRR@20 on those held-out sessions (early stopping; the test set is never looked
at for selection), and is then evaluated once on all test prefixes with full ranking.

Variants: base (plain matrix), blur, i2i, gmm, kmeans, categories (each "+Blur"). Their item
vectors come from the Base run of the same model and seed (the thesis's two-stage scheme,
--source model) or from Cleora over the training click graph (--source cleora, no base model).

Protocol `--protocol refit` (what the papers' numbers correspond to: all training sessions): the
epoch count is the one the validation run of the same model, variant and seed selected (that run
must exist); the model is retrained on *all* training sessions for that many epochs and tested.
Its per-epoch test metrics are recorded as a diagnostic `test_curve` — never used to select
anything — to show what the official script's "best epoch on the test set" would have reported.
Refit variants take their item vectors from the refit Base model. `--epochs-from base` takes the
epoch count from the Base validation run instead of the variant's own (one validation run per
model instead of one per variant; still chosen on validation, never on test).

Recipes (`--recipe`): `ours` (default) is the settings every table so far used — SRGNN's defaults
with --epochs 12, --patience 2, --lr-decay-every 3, early stopping on validation MRR@20, Blur per
session, GMM started from KMeans labels. `thesis` is the MSc thesis's appendix A.2: weights
N(0, 0.1), 2 GNN steps, lr x 0.1 every 2 epochs, early stopping on validation loss with patience 5
(augmented models: 4) over at most 20 epochs, L2 1e-5 (augmented models: 1e-6), Blur per cell
(Eq. 6.1), GMM means started at the KMeans centroids with equal weights. Item by item against
today's settings: docs/srgnn_thesis_recipe.md. --epochs / --patience / --lr-decay-every / --blur-mode
override the recipe's value (recorded in the run's JSON). Runs of the thesis recipe are named
`...-thesis-...`, runs with Blur per cell `...-cellblur-...`; the table has a recipe column and
says which Blur each row used.

Runs are resumable: each writes an epoch checkpoint under --runs-dir and, when done, a JSON
result (and the per-prefix test ranks, .ranks.npz) under benchmarks/results/srgnn_runs/ that later
invocations skip (results written elsewhere, e.g. by an older checkout into docs/benchmarks/srgnn_runs,
are read once copied there). `--report` (re)writes docs/benchmarks/srgnn_augmentation.md from
every result there: mean ± std over seeds, and paired tests against Base (`sketchrec.eval.significance`:
per seed when there are several, per test prefix on hits and reciprocal ranks).

    python -m benchmarks.srgnn_augmentation --model srgnn --variants base --seeds 0
    python -m benchmarks.srgnn_augmentation --model srgnn --variants i2i kmeans --seeds 0
    python -m benchmarks.srgnn_augmentation --recipe thesis --variants base blur i2i --seeds 0 1 2
    python -m benchmarks.srgnn_augmentation --report
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from pathlib import Path

import numpy as np

from sketchrec import presets
from sketchrec.augment import AdjacencyAugmentation
from sketchrec.data import registry
from sketchrec.eval.metrics import session_metrics
from sketchrec.eval.protocols import next_item_ranks, select_epochs_then_refit
from sketchrec.eval.report import benchmark_parser, mean_std, peak_rss_mib
from sketchrec.eval.significance import compare_ranks, paired_t
from sketchrec.eval.validation import NextItemValidation
from sketchrec.models.base import Recommender
from sketchrec.models.srgnn import SRGNN, TAGNN
from sketchrec.precision import cpu_summary

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "srgnn_runs"      # per-run .json and .ranks.npz (README there)
MODELS = {"srgnn": SRGNN, "tagnn": TAGNN}
MODEL_STYLE = {"srgnn": ("SR-GNN", "tab:blue"), "tagnn": ("TAGNN", "tab:orange")}   # figure name, colour
LABELS = {"base": "Base", "blur": "Blur", "i2i": "i2i+Blur", "gmm": "GMM+Blur", "kmeans": "KMeans+Blur",
          "categories": "Categories+Blur"}
PUBLISHED = {  # HR@20 / MRR@20. Diginetica: thesis Tables 7.1 / 7.6; YooChoose 1/64: the SR-GNN and TAGNN papers
    ("diginetica", "srgnn", "base"): (50.71, 17.75), ("diginetica", "srgnn", "i2i"): (51.18, 18.05),
    ("diginetica", "srgnn", "blur"): (51.11, 17.75),
    ("diginetica", "srgnn", "kmeans"): (51.12, 18.06),
    ("diginetica", "tagnn", "base"): (50.34, 17.66), ("diginetica", "tagnn", "gmm"): (51.13, 18.05),
    ("yoochoose1-64", "srgnn", "base"): (70.57, 30.94), ("yoochoose1-64", "tagnn", "base"): (71.02, 31.12)}
# "model": estimator settings of every run (the srgnn-* presets); "augmented": what runs with an
# augmentation change; "augmentation": AdjacencyAugmentation settings. "ours" leaves the rest at
# SRGNN's defaults.
RECIPES = {
    "ours": {"model": presets.get("srgnn-ours"), "augmented": {},
             "augmentation": {"blur_mode": "session", "gmm_init": "labels"}},
    "thesis": {"model": presets.get("srgnn-thesis"), "augmented": {"l2": 1e-6, "patience": 4},
               "augmentation": {"blur_mode": "cell", "gmm_init": "centroids", "n_clusters": 8}},
}
OVERRIDES = ("epochs", "patience", "lr_decay_every")        # command-line options that override a recipe
log = logging.getLogger("srgnn_augmentation")


def run_name(model: str, variant: str, source: str, seed: int, dataset: str, protocol: str = "validation",
             recipe: str = "ours", blur_mode: str = "session") -> str:
    src = "" if variant in ("base", "blur") else f"-{source}"
    tags = "" if recipe == "ours" else f"-{recipe}"
    tags += "-cellblur" if variant != "base" and blur_mode == "cell" else ""
    return f"{dataset}-{model}-{variant}{src}{tags}-s{seed}" + ("-refit" if protocol == "refit" else "")


def args_blur_mode(args) -> str:
    return args.blur_mode or RECIPES[args.recipe]["augmentation"]["blur_mode"]


def args_run_name(args, variant: str, seed: int, protocol: str | None = None, model: str | None = None) -> str:
    """`run_name` of a run of this invocation's dataset, source, recipe and blur mode."""
    return run_name(model or args.model, variant, args.source, seed, args.dataset, protocol or args.protocol,
                    args.recipe, args_blur_mode(args))


def model_settings(args, variant: str) -> dict:
    """The estimator's settings for a variant under --recipe, with the command line's overrides."""
    recipe = RECIPES[args.recipe]
    settings = {**recipe["model"], **(recipe["augmented"] if variant != "base" else {})}
    settings.update({k: getattr(args, k) for k in OVERRIDES if getattr(args, k) is not None})
    return settings


def item_categories(bench) -> np.ndarray:
    from sketchrec.data.align import diginetica_categories
    return diginetica_categories(bench, registry.data_dir())


def source_vectors(args, train, seed: int) -> np.ndarray:
    # cleora: the click graph of the sessions the model trains on (all of train under refit)
    if args.source == "cleora":
        from sketchrec.models.emde import row_item_embeddings
        return row_item_embeddings(train, steps=args.cleora_steps, dim=args.cleora_dim, seed=seed)
    base = Path(args.runs_dir) / f"{args_run_name(args, 'base', seed)}.model.npz"
    if not base.exists():
        raise SystemExit(f"variant needs the Base model of seed {seed}: run --variants base --seeds {seed} "
                         f"--protocol {args.protocol} --recipe {args.recipe} first ({base} is missing)")
    return Recommender.load(base).item_vectors()


def test_ranks(model, bench) -> np.ndarray:
    return next_item_ranks(model, bench.test_prefixes, bench.test_targets)[0]


def run(args, variant: str, seed: int, bench, bench_valid) -> None:
    name = args_run_name(args, variant, seed)
    out = RESULTS / f"{name}.json"
    if out.exists():
        log.info("%s: done already (%s)", name, out)
        return
    settings = model_settings(args, variant)
    validation = NextItemValidation(bench_valid.test_prefixes, bench_valid.test_targets,
                                    loss=settings.get("stop_on") == "loss")      # the thesis recipe stops on it
    train, curve = bench_valid.train, None
    if args.protocol == "refit":
        # the epoch count: the validation run of this variant (or of --epochs-from) for this seed,
        # else the lowest seed's (recorded as epochs_from)
        chooser, chooser_model = args.epochs_from or variant, args.epochs_model or args.model
        selected = [RESULTS / f"{args_run_name(args, chooser, s, 'validation', chooser_model)}.json"
                    for s in [seed] + list(range(10))]
        selected = [p for p in selected if p.exists()]
        if not selected:
            raise SystemExit(f"--protocol refit needs a validation run of {chooser_model} {chooser} (its best epoch)")
        settings["epochs"] = json.loads(selected[0].read_text())["best_epoch"]
        validation, train, curve = None, bench.train, []
        log.info("%s: %d epochs, as selected by %s", name, settings["epochs"], selected[0].name)
    runs = Path(args.runs_dir)
    runs.mkdir(parents=True, exist_ok=True)
    augmentation, source_s = None, 0.0
    if variant != "base":
        t0 = time.perf_counter()
        vectors = None if variant == "blur" else source_vectors(args, train, seed)
        source_s = time.perf_counter() - t0
        cats = item_categories(bench) if variant == "categories" else None
        recipe = {**RECIPES[args.recipe]["augmentation"], "blur_mode": args_blur_mode(args)}
        augmentation = AdjacencyAugmentation(variant, vectors, categories=cats, seed=seed, **recipe).fit()
    def make(epochs):
        return MODELS[args.model](**{**settings, "epochs": epochs}, seed=seed, bf16=args.bf16,
                                  bf16_attention=args.bf16_attention, threads=args.threads)

    def diagnostic(epoch, fitted, row):     # refit only: test after every epoch, selects nothing
        row["test_curve"] = {k: float(v) for k, v in session_metrics(test_ranks(fitted, bench), ks=(10, 20)).items()
                             if "@" in k}
        fitted.net_.train()
        log.info("%s epoch %d (diagnostic) test %s", name, epoch, row["test_curve"])

    fit_kwargs = dict(augmentation=augmentation, checkpoint=str(runs / f"{name}.ckpt.npz"))
    t0 = time.perf_counter()
    if curve is None:       # the validation half of select-epochs-then-refit; the refit is its own run
        model = select_epochs_then_refit(make, train, validation, max_epochs=settings["epochs"],
                                         probe_kwargs=fit_kwargs).probe
    else:
        model = make(settings["epochs"]).fit(train, **fit_kwargs,
                                             callback=None if args.no_curve else diagnostic)
    fit_s = time.perf_counter() - t0
    if curve is not None:
        model.best_epoch_ = settings["epochs"]
        fit_s = sum(h["seconds"] for h in model.history_)     # without the diagnostic scoring
    model.save(runs / f"{name}.model.npz")
    t0 = time.perf_counter()
    ranks = test_ranks(model, bench)
    score_s = time.perf_counter() - t0
    RESULTS.mkdir(parents=True, exist_ok=True)     # per-prefix ranks, kept for the paired tests (~100 KB)
    np.savez_compressed(RESULTS / f"{name}.ranks.npz", ranks=ranks.astype(np.uint16 if ranks.max() < 65536 else np.int32))
    metrics = session_metrics(ranks, ks=(10, 20))
    result = {"protocol": args.protocol, "epochs_from": selected[0].name if curve is not None else None, "model": args.model, "variant": variant, "source": args.source if augmentation is not None
              and variant != "blur" else None, "seed": seed, "dataset": args.dataset, "recipe": args.recipe,
              "recipe_overrides": {k: getattr(args, k) for k in (*OVERRIDES, "blur_mode")
                                   if getattr(args, k) is not None},
              "blur_mode": augmentation.blur_mode if augmentation is not None and augmentation.blur else None,
              "augmentation": None if augmentation is None else {
                  "name": augmentation.name, "blur_mode": augmentation.blur_mode, "p_blur": augmentation.p_blur,
                  "blur_mean": augmentation.blur_mean, "blur_std": augmentation.blur_std,
                  "p_edge": augmentation.p_edge, "n_clusters": augmentation.n_clusters,
                  "gmm_init": augmentation.gmm_init},
              "test": {k: v for k, v in metrics.items() if "@" in k}, "best_epoch": model.best_epoch_,
              "history": model.history_, "fit_s": fit_s, "test_score_s": score_s,
              "n_test": int(len(ranks)),
              "params": {**model.get_params(), "bf16": model.bf16_, "bf16_attention": model.bf16_attention_},
              "source_s": source_s, "peak_rss_mib": peak_rss_mib(),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores", "cpu": cpu_summary(), "when": time.strftime("%Y-%m-%d %H:%M UTC",
                                                                                             time.gmtime())}
    RESULTS.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=float))
    log.info("%s: test %s", name, result["test"])


def run_key(r: dict) -> tuple:
    """(model, protocol, recipe, variant, source, blur mode) of a result; runs before the recipes
    and blur modes existed used today's settings and Blur per session."""
    blur = r.get("blur_mode", "session" if r["variant"] != "base" else None)
    return r["model"], r.get("protocol", "validation"), r.get("recipe", "ours"), r["variant"], r["source"], blur


def variant_label(variant: str, blur: str | None) -> str:
    return LABELS[variant] + (f" (per {blur})" if blur else "")


def paired_ranks(dataset: str, key: tuple, seed: int):
    """The per-test-prefix ranks of a variant's run (`run_key`) and of Base of the same recipe and
    seed, or None."""
    model, protocol, recipe, variant, source, blur = key
    files = [RESULTS / f"{run_name(model, v, src or '', seed, dataset, protocol, recipe, b)}.ranks.npz"
             for v, src, b in ((variant, source, blur or "session"), ("base", None, "session"))]
    if not all(f.exists() for f in files):
        return None
    return tuple(np.load(f)["ranks"].astype(np.int64) for f in files)


def paired_tests(dataset: str, key: tuple, seed: int) -> dict | None:
    """`compare_ranks` of a variant's run against Base of the same recipe and seed, per test
    prefix (HR@20 / MRR@20 differences with 95% half-widths, McNemar and Wilcoxon p), or None."""
    ranks = paired_ranks(dataset, key, seed)
    return None if ranks is None else compare_ranks(*ranks, k=20)


def plot_deltas(groups: list[tuple[tuple, list[dict]]], dataset: str, path: Path) -> bool:
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
            tests = paired_tests(dataset, key, r["seed"])
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


def report() -> None:
    rows = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))]
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
            chosen_by = {(c["model"], c["variant"]) for c in (json.loads((RESULTS / r["epochs_from"]).read_text())
                                                              for r in rs if r.get("epochs_from")
                                                              and (RESULTS / r["epochs_from"]).exists())}
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
                tests = [t for t in (paired_tests(dataset, key, r["seed"]) for r, _ in paired) if t is not None]
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
        figure = ROOT / "docs" / "benchmarks" / f"srgnn_augmentation_{dataset}.png"
        if plot_deltas([(k, rs) for k, rs in ordered if k[1] == "refit" and k[3] != "base"], dataset, figure):
            lines += [f"![gain over Base per seed, {dataset}]({figure.name})", ""]
    (ROOT / "docs" / "benchmarks" / "srgnn_augmentation.md").write_text("\n".join(lines))   # as before: no final newline
    print("\n".join(lines))


def main() -> None:
    parser = benchmark_parser(__doc__, dataset="diginetica", seeds=[0], threads=None)
    parser.add_argument("--model", choices=sorted(MODELS), default="srgnn")
    parser.add_argument("--variants", nargs="+", default=["base"], choices=list(LABELS))
    parser.add_argument("--source", choices=("model", "cleora"), default="model")
    parser.add_argument("--protocol", choices=("validation", "refit"), default="validation")
    parser.add_argument("--recipe", choices=sorted(RECIPES), default="ours",
                        help="training settings: ours (every earlier table) or thesis (MSc appendix A.2; "
                             "docs/srgnn_thesis_recipe.md)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="at most this many epochs (recipe: ours 12, thesis 20)")
    parser.add_argument("--patience", type=int, default=None,
                        help="early-stopping patience (recipe: ours 2, thesis 5 for Base and 4 for augmented models)")
    parser.add_argument("--lr-decay-every", type=int, default=None,
                        help="epochs between lr x 0.1 (recipe: ours 3, thesis 2)")
    parser.add_argument("--blur-mode", choices=("cell", "session"), default=None,
                        help="Blur per cell (Eq. 6.1) or per session (recipe: ours session, thesis cell)")
    parser.add_argument("--epochs-from", choices=list(LABELS), default=None,
                        help="refit: take the epoch count from this variant's validation run (default: the "
                             "variant's own), e.g. base, to skip a validation run per variant")
    parser.add_argument("--epochs-model", choices=sorted(MODELS), default=None,
                        help="refit: take the epoch count from this model's validation run (default: the model "
                             "itself), e.g. srgnn for TAGNN, whose validation run costs a session of its own")
    parser.add_argument("--bf16", action="store_const", const=True, default="auto",
                        help="force bf16 autocast in training (default: only where the CPU computes bf16 natively)")
    parser.add_argument("--float32", dest="bf16", action="store_const", const=False, help="force float32 training")
    parser.add_argument("--bf16-attention", action="store_const", const=True, default="auto",
                        help="TAGNN: force bf16 operands in the target attention's training GEMMs (~1.5x per "
                             "batch where bf16 is native; default: only there)")
    parser.add_argument("--no-curve", action="store_true",
                        help="refit: skip the diagnostic test scoring after every epoch (TAGNN: ~157 s each)")
    parser.add_argument("--cleora-steps", type=int, default=2)
    parser.add_argument("--cleora-dim", type=int, default=100)
    parser.add_argument("--runs-dir", default=os.environ.get("SKETCHREC_RUNS",
                                                             str(Path.home() / ".cache" / "sketchrec" / "runs")))
    parser.add_argument("--max-train-sessions", type=int, default=None,
                        help="smoke test: keep only the last N training sessions and 2,000 test pairs")
    parser.add_argument("--report", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.report:
        report()
        return
    bench = registry.load(args.dataset)
    if args.max_train_sessions:
        from sketchrec.data.benchmark import SessionBenchmark
        keep = np.arange(2000)
        bench = SessionBenchmark(f"{bench.name}-smoke", bench.train.take(np.arange(len(bench.train))[-args.max_train_sessions:]),
                                 bench.test_prefixes.take(keep), bench.test_targets[keep], bench.item_ids)
        args.dataset = bench.name
    bench_valid = bench.validation(0.1)
    log.info("%s; validation %s", bench, bench_valid)
    for seed in args.seeds:
        for variant in args.variants:
            run(args, variant, seed, bench, bench_valid)


if __name__ == "__main__":
    main()
