"""EMDE at the scale it was made for: one streaming epoch and 100k scored sessions on synthetic logs
of 1M, 10M (, 100M) events, each size in its own process; the streaming trainer against the
in-memory one on Diginetica (`--quality memory|stream`). Logic: sketchrec.eval.scale.

    python -m benchmarks.emde_scale --sizes 1000000 10000000
    python -m benchmarks.emde_scale --quality stream --epochs 3 --seed 0
writes docs/benchmarks/emde_scale.md, results under benchmarks/results/emde_scale/.
"""

import json
from pathlib import Path

from sketchrec import presets
from sketchrec.eval import scale
from sketchrec.eval.report import benchmark_parser
from sketchrec.models import EMDE
from sketchrec.pipeline import load_session_benchmark

ROOT = Path(__file__).resolve().parents[1]
RESULTS, WORK = ROOT / "benchmarks/results/emde_scale", ROOT / "runs/emde_scale"


def main() -> None:
    parser = benchmark_parser(__doc__, seed=0, threads=1, epochs=1, output=ROOT / "docs/benchmarks/emde_scale.md")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--quality", choices=["memory", "stream"])
    parser.add_argument("--one", type=int, help="(internal) measure one size in this process")
    args = parser.parse_args()
    make = lambda **kw: EMDE(**{**presets.get("emde-session"), "epochs": args.epochs, "seed": args.seed,  # noqa: E731
                                "threads": args.threads, "progress": False, **kw})
    if args.quality:
        out = scale.stream_quality(make, load_session_benchmark("diginetica"), args.quality,
                                   WORK / "diginetica_log")
        return scale.save(RESULTS / f"quality_{args.quality}_seed{args.seed}.json", out)
    if args.one:
        return print(json.dumps(scale.measure_size(make, args.one, WORK / f"log_{args.one}", args.seed)))
    scale.run_sizes(args.sizes, [Path(__file__), "--threads", args.threads, "--epochs", args.epochs],
                    RESULTS, args.output, args.threads)


if __name__ == "__main__":
    main()
