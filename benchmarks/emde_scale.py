"""EMDE at scale (logic: sketchrec.eval.scale): a streaming epoch, 100k scored sessions and every profile
on synthetic logs of 1M, 10M (, 100M) events, a process per size (resumable); --quality memory|stream:
streaming vs in-memory on Diginetica; --profiles N: profiles of N users. Writes docs/benchmarks/emde_scale.md.

    python -m benchmarks.emde_scale --sizes 1000000 10000000 && python -m benchmarks.emde_scale --profiles 1000000"""

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
    parser.add_argument("--profiles", type=int, help="users whose profiles to write (one process)")
    parser.add_argument("--row-groups", type=int, default=10_000, help="--quality stream: sessions per row group")
    parser.add_argument("--float32", action="store_true", help="train in float32 (default: bf16 where the CPU has it)")
    parser.add_argument("--one", type=int, help="(internal) measure one size in this process")
    parser.add_argument("--peer", choices=scale.PEERS, help="(internal, with --one) measure this model instead")
    a = parser.parse_args()
    make = lambda **kw: EMDE(**{**presets.get("emde-session"), "epochs": a.epochs, "seed": a.seed,  # noqa: E731
                                "threads": a.threads, "progress": False, **({"bf16": False} if a.float32 else {}), **kw})
    if a.quality:
        name = f"quality_{a.quality}_seed{a.seed}_e{a.epochs}" + (f"_g{a.row_groups}" if a.row_groups != 10_000 else "")
        out = scale.stream_quality(make, load_session_benchmark("diginetica"), a.quality,
                                   WORK / f"diginetica_log{'' if a.row_groups == 10_000 else f'_g{a.row_groups}'}",
                                   checkpoint=WORK / f"{name}.ckpt.npz", sessions_per_group=a.row_groups)
        return scale.save(RESULTS / f"{name}.json", out)
    if a.profiles:
        return scale.save(RESULTS / f"profiles_{a.profiles}.json", scale.measure_profiles(make, a.profiles, WORK / f"users_{a.profiles}"))
    if a.one and a.peer:
        peer = lambda: presets.make("vsknn-session", threads=a.threads)  # noqa: E731
        return print(json.dumps(scale.measure_peer(a.peer, peer, a.one, WORK / f"log_{a.one}", a.seed)))
    if a.one:
        return print(json.dumps(scale.measure_size(make, a.one, WORK / f"log_{a.one}", a.seed)))
    scale.run_sizes(a.sizes, [Path(__file__), "--threads", a.threads, "--epochs", a.epochs], RESULTS, a.output, a.threads)


if __name__ == "__main__":
    main()
