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
from pathlib import Path

import numpy as np

from sketchrec import presets
from sketchrec.augment import AdjacencyAugmentation
from sketchrec.data import registry
from sketchrec.eval.metrics import session_metrics
from sketchrec.eval.protocols import next_item_ranks, select_epochs_then_refit
from sketchrec.eval.report import benchmark_parser, timed
from sketchrec.eval.runs import (LABELS, OVERRIDES, augmentation_report, recipe_settings, refit_epochs, run_name,
                                 run_result, save_ranks)
from sketchrec.eval.validation import NextItemValidation
from sketchrec.models.base import Recommender
from sketchrec.models.srgnn import SRGNN, TAGNN

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "srgnn_runs"      # per-run .json and .ranks.npz (README there)
MODELS = {"srgnn": SRGNN, "tagnn": TAGNN}
# "model": estimator settings of every run (the srgnn-* presets); "augmented": what runs with an
# augmentation change; "augmentation": AdjacencyAugmentation settings. "ours" leaves the rest at
# SRGNN's defaults.
RECIPES = {
    "ours": {"model": presets.get("srgnn-ours"), "augmented": {},
             "augmentation": {"blur_mode": "session", "gmm_init": "labels"}},
    "thesis": {"model": presets.get("srgnn-thesis"), "augmented": {"l2": 1e-6, "patience": 4},
               "augmentation": {"blur_mode": "cell", "gmm_init": "centroids", "n_clusters": 8}},
}
log = logging.getLogger("srgnn_augmentation")


def args_blur_mode(args) -> str:
    return args.blur_mode or RECIPES[args.recipe]["augmentation"]["blur_mode"]


def args_run_name(args, variant: str, seed: int, protocol: str | None = None, model: str | None = None) -> str:
    """`run_name` of a run of this invocation's dataset, source, recipe and blur mode."""
    return run_name(model or args.model, variant, args.source, seed, args.dataset, protocol or args.protocol,
                    args.recipe, args_blur_mode(args))


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
    settings = recipe_settings(RECIPES[args.recipe], variant, {k: getattr(args, k) for k in OVERRIDES})
    validation = NextItemValidation(bench_valid.test_prefixes, bench_valid.test_targets,
                                    loss=settings.get("stop_on") == "loss")      # the thesis recipe stops on it
    train, refit, epochs_from = bench_valid.train, args.protocol == "refit", None
    if refit:
        # the epoch count: the validation run of this variant (or of --epochs-from) for this seed,
        # else the lowest seed's (recorded as epochs_from)
        chooser, chooser_model = args.epochs_from or variant, args.epochs_model or args.model
        selected = refit_epochs(RESULTS, [args_run_name(args, chooser, s, "validation", chooser_model)
                                          for s in [seed] + list(range(10))])
        if selected is None:
            raise SystemExit(f"--protocol refit needs a validation run of {chooser_model} {chooser} (its best epoch)")
        (settings["epochs"], epochs_from), validation, train = selected, None, bench.train
        log.info("%s: %d epochs, as selected by %s", name, settings["epochs"], epochs_from)
    runs = Path(args.runs_dir)
    runs.mkdir(parents=True, exist_ok=True)
    augmentation, source_s = None, 0.0
    if variant != "base":
        vectors, source_s = (None, 0.0) if variant == "blur" else timed(source_vectors, args, train, seed)
        cats = None
        if variant == "categories":
            from sketchrec.data.align import diginetica_categories
            cats = diginetica_categories(bench, registry.data_dir())
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
    if not refit:       # the validation half of select-epochs-then-refit; the refit is its own run
        chosen, fit_s = timed(select_epochs_then_refit, make, train, validation, max_epochs=settings["epochs"],
                              probe_kwargs=fit_kwargs)
        model = chosen.probe
    else:
        model = make(settings["epochs"]).fit(train, **fit_kwargs, callback=None if args.no_curve else diagnostic)
        model.best_epoch_ = settings["epochs"]
        fit_s = sum(h["seconds"] for h in model.history_)     # without the diagnostic scoring
    model.save(runs / f"{name}.model.npz")
    ranks, score_s = timed(test_ranks, model, bench)
    RESULTS.mkdir(parents=True, exist_ok=True)
    save_ranks(RESULTS / f"{name}.ranks.npz", ranks)
    result = run_result({"protocol": args.protocol, "epochs_from": epochs_from, "model": args.model,
                         "variant": variant, "source": args.source, "seed": seed, "dataset": args.dataset,
                         "recipe": args.recipe, "recipe_overrides": {k: getattr(args, k) for k in (*OVERRIDES, "blur_mode")
                                                                     if getattr(args, k) is not None}},
                        model, augmentation, ranks, fit_s=fit_s, score_s=score_s, source_s=source_s)
    out.write_text(json.dumps(result, indent=1, default=float))
    log.info("%s: test %s", name, result["test"])


def report() -> None:
    page = augmentation_report(RESULTS, ROOT / "docs" / "benchmarks")
    (ROOT / "docs" / "benchmarks" / "srgnn_augmentation.md").write_text(page)   # as before: no final newline
    print(page)


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
