"""`sketchrec` command line: datasets, data inspection, evaluation, the demo job."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Optional

import numpy as np
import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from sketchrec import presets

app = typer.Typer(help="sketchrec: recommendations from massive, multimodal behavioural data.",
                  no_args_is_help=True, add_completion=False)
datasets_app = typer.Typer(help="The dataset registry: list, describe, verify.", no_args_is_help=True)
data_app = typer.Typer(help="Look at your own event files.", no_args_is_help=True)
app.add_typer(datasets_app, name="datasets")
eval_app = typer.Typer(help="Embedding quality on graph benchmarks.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(eval_app, name="eval")
train_app = typer.Typer(help="Train recommenders.", no_args_is_help=True)
app.add_typer(train_app, name="train")
robustness_app = typer.Typer(help="Robustness of text models to natural corruptions.", no_args_is_help=True)
app.add_typer(robustness_app, name="robustness")
console = Console()
#: the validated EMDE session settings: `train emde`'s option defaults
_EMDE_SESSION = presets.get("emde-session")


@app.callback()
def _main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress details.")):
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s",
                        handlers=[RichHandler(console=Console(stderr=True), show_path=False)])


# -- datasets -------------------------------------------------------------------

@datasets_app.command("list")
def datasets_list(family: Optional[str] = typer.Option(None, help="Only this family.")):
    """Every registered dataset, with whether its files are present."""
    from sketchrec.data import registry
    table = Table(title=f"datasets (data dir: {registry.data_dir()})")
    for col in ("name", "family", "present", "description"):
        table.add_column(col)
    for spec in registry.list_datasets(family):
        present = registry.verify(spec.name, quick=True)
        table.add_row(spec.name, spec.family, "yes" if all(present.values()) else "no",
                      spec.description)
    console.print(table)


@datasets_app.command("info")
def datasets_info(name: str):
    """Source, licence, citation, files and counts of one dataset."""
    from sketchrec.data import registry
    console.print_json(json.dumps(registry.info(name), default=str))


@datasets_app.command("verify")
def datasets_verify(name: str):
    """Check the sha256 of every file of a dataset."""
    from sketchrec.data import registry
    result = registry.verify(name)
    for rel, ok in result.items():
        console.print(f"{'[green]ok' if ok else '[red]BAD'}[/] {rel}")
    if not all(result.values()):
        raise typer.Exit(1)


@datasets_app.command("fetch")
def datasets_fetch(name: str, force: bool = typer.Option(False, "--force", help="Download and rebuild even "
                                                          "files that are present and valid.")):
    """Download a dataset into the data dir (re-packed files are rebuilt from their sources).

    Set SKETCHREC_MIRROR to read every URL from an internal mirror instead."""
    from rich.markup import escape

    from sketchrec.data import registry
    from sketchrec.data.download import MissingDatasetError, NotDownloadableError, fetch
    try:
        paths = fetch(name, force=force)
    except (MissingDatasetError, NotDownloadableError, registry.ChecksumError,
            registry.UnknownDatasetError) as exc:
        console.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)  # one line, unwrapped
        raise typer.Exit(1)
    for rel in sorted(paths):
        console.print(f"[green]ok[/] {escape(rel)}")


# -- data -----------------------------------------------------------------------

@data_app.command("inspect")
def data_inspect(
    path: str = typer.Argument(..., help="CSV/TSV(.gz), Parquet or JSONL file (or glob)."),
    user: str = typer.Option(..., help="User or session id column."),
    item: str = typer.Option(..., help="Item id column."),
    timestamp: Optional[str] = typer.Option(None, help="Timestamp column."),
    event: Optional[str] = typer.Option(None, help="Event type column."),
    weight: Optional[str] = typer.Option(None, help="Weight column."),
    delimiter: Optional[str] = typer.Option(None, help="CSV delimiter (default: sniffed)."),
    session_gap: Optional[float] = typer.Option(None, help="Split users into sessions at gaps of this many minutes."),
    on_bad_rows: str = typer.Option("skip", help="'skip' (report bad rows) or 'raise'."),
):
    """Rows, sessions, items and bad rows of an event file (rows read = rows kept + bad rows)."""
    from rich.markup import escape

    from sketchrec.data import DataValidationError, read_interactions
    t0 = time.perf_counter()
    try:
        inter = read_interactions(path, user=user, item=item, timestamp=timestamp, event=event,
                                  weight=weight, delimiter=delimiter, on_bad_rows=on_bad_rows)
    except (DataValidationError, FileNotFoundError, ValueError) as exc:
        console.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(2)
    seconds = time.perf_counter() - t0
    sessions = inter.to_sessions(gap_seconds=session_gap * 60 if session_gap else None)
    lengths = sessions.lengths
    table = Table(title=escape(path), show_header=False)
    for k, v in [("rows read", f"{inter.report.rows_read:,}"), ("rows kept", f"{len(inter):,}"),
                 ("bad rows", f"{inter.report.n_bad:,} {inter.report.counts_by_column() or ''}"),
                 ("users / session ids", f"{inter.n_users:,}"), ("sessions", f"{len(sessions):,}"),
                 ("items", f"{inter.n_items:,}"),
                 ("session length mean / median / max",
                  f"{lengths.mean():.2f} / {int(np.median(lengths))} / {lengths.max()}"
                  if len(lengths) else "-"),
                 ("read seconds", f"{seconds:.2f}")]:
        table.add_row(k, escape(v))
    console.print(table)
    report = inter.report
    if report.n_bad:
        console.print(escape(report.summary()))
        for i in range(min(10, report.n_bad)):
            console.print(f"  {escape(report.where(i))}: {escape(report.problem(i))}")
        if report.n_bad > 10:
            console.print(f"  ... and {report.n_bad - 10:,} more")


# -- embeddings ---------------------------------------------------------------------

@app.command()
def embed(
    path: str = typer.Argument(..., help="Edge or event file (CSV/TSV(.gz), Parquet, JSONL)."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder for vectors.npy + ids.parquet + provenance.json."),
    columns: list[str] = typer.Option(..., "--column", "-c",
                                      help="Column spec, repeatable: NAME, complex::NAME, reflexive::, transient::."),
    dim: int = typer.Option(256, help="Embedding dimension."),
    iterations: int = typer.Option(4, help="Propagation iterations."),
    propagation: str = typer.Option("left", help="'left' (D^-1 A) or 'symmetric'."),
    expansion: str = typer.Option("clique", help="Hyperedge expansion: 'clique' or 'star'."),
    weight: Optional[str] = typer.Option(None, help="Numeric column weighting each row's edges."),
    seed: int = typer.Option(0, help="Seed of the initial vectors."),
    delimiter: Optional[str] = typer.Option(None, help="CSV delimiter (default: sniffed)."),
):
    """Cleora embeddings of the entities in a file's columns (pycleora-style column specs)."""
    import pyarrow as pa

    from sketchrec.data.readers import read_columns
    from sketchrec.graph import Cleora, Graph
    t0 = time.perf_counter()
    names = [c.split("::")[-1] for c in columns] + ([weight] if weight else [])
    table = read_columns(path, columns=names, delimiter=delimiter)
    if weight:
        table = table.set_column(table.column_names.index(weight), weight,
                                 table.column(weight).cast(pa.float32()))
    graph = Graph.from_columns(table, list(columns), expansion=expansion, weight=weight)
    console.print(f"{graph} built in {time.perf_counter() - t0:.1f} s")
    model = Cleora(dim=dim, iterations=iterations, propagation=propagation, seed=seed).fit(graph)
    model.embeddings_.save(output)
    console.print(f"{model.embeddings_} written to {output} (embedding {model.seconds_:.1f} s)")


# Every graph command that takes a dataset by name takes your own edge files too.
_SOURCE_COLUMN = typer.Option("source", help="Edge source column of your edge files.")
_TARGET_COLUMN = typer.Option("target", help="Edge target column of your edge files.")


@eval_app.command("linkpred")
def eval_linkpred(
    dataset: Optional[str] = typer.Option(None, help="A graph dataset from the registry (default: "
                                                     "facebook-page-page; or give --train and --test)."),
    dim: int = typer.Option(1024), iterations: int = typer.Option(4), seed: int = typer.Option(0),
    train: Optional[Path] = typer.Option(None, "--train", help="Your own training edges (CSV/TSV(.gz), Parquet, "
                                                               "JSON; node names of any type)."),
    test: Optional[Path] = typer.Option(None, "--test", help="Your own held-out edges, same columns."),
    source_column: str = _SOURCE_COLUMN, target_column: str = _TARGET_COLUMN,
):
    """Cleora link prediction: 10% edges held out (or your --test edges), ranked among the 10,000 most
    popular nodes."""
    from sketchrec.eval.graph_tasks import linkpred_evaluate, split_edges
    from sketchrec.graph import Cleora, Graph
    if (train is None) != (test is None) or (dataset is not None and train is not None):
        raise typer.BadParameter("give either --dataset, or both --train and --test")
    if train is None:
        from sketchrec.data import registry
        dataset = dataset or "facebook-page-page"
        ds = registry.load(dataset)
        n_nodes, (train_edges, test_edges) = ds.n_nodes, split_edges(ds.edges, 0.1, seed=seed)
    else:
        from sketchrec.data.edge_lists import read_edge_split
        split = _read_or_exit(read_edge_split, train, test, source=source_column, target=target_column)
        dataset, n_nodes, train_edges, test_edges = train.name, split.n_nodes, split.train, split.test
        console.print(f"{n_nodes:,} nodes, {len(train_edges):,} training edges, {len(test_edges):,} test edges")
    graph = Graph.from_edges(train_edges[:, 0], train_edges[:, 1], n_nodes=n_nodes)
    vectors = Cleora(dim=dim, iterations=iterations, seed=seed).fit(graph).vectors_
    console.print({dataset: linkpred_evaluate(vectors, train_edges, test_edges, seed=seed)})


@eval_app.command("nodeclf")
def eval_nodeclf(
    dataset: Optional[str] = typer.Option(None, help="A labelled graph dataset from the registry (default: cora; "
                                                     "or give --edges, --train and --test)."),
    dim: int = typer.Option(1024), iterations: int = typer.Option(4),
    edges: Optional[Path] = typer.Option(None, "--edges", help="Your own graph's edges (CSV/TSV(.gz), Parquet, "
                                                               "JSON; node names of any type)."),
    train: Optional[Path] = typer.Option(None, "--train", help="Your training nodes and their labels."),
    test: Optional[Path] = typer.Option(None, "--test", help="Your test nodes and their labels."),
    source_column: str = _SOURCE_COLUMN, target_column: str = _TARGET_COLUMN,
    node_column: str = typer.Option("node", help="Node column of --train / --test."),
    label_column: str = typer.Option("label", help="Label column of --train / --test."),
):
    """Node classification with logistic regression on standardised vectors, C chosen on validation nodes:
    public split (if any; its val nodes) and 5 stratified 80/20 splits, or your own --train / --test nodes."""
    from sketchrec.eval.graph_tasks import nodeclf_evaluate, nodeclf_random_splits
    from sketchrec.graph import Cleora, Graph
    own = (edges, train, test)
    if any(f is not None for f in own) and (dataset is not None or any(f is None for f in own)):
        raise typer.BadParameter("give either --dataset, or all of --edges, --train and --test")
    if edges is not None:
        from sketchrec.data.edge_lists import read_labelled_graph
        graph_files, train_idx, test_idx = _read_or_exit(
            read_labelled_graph, edges, train, test, source=source_column, target=target_column,
            node=node_column, label=label_column)
        console.print(f"{graph_files.n_nodes:,} nodes, {len(graph_files.train):,} edges, "
                      f"{len(graph_files.label_names):,} labels; {len(train_idx):,} training and "
                      f"{len(test_idx):,} test nodes")
        graph = Graph.from_edges(graph_files.train[:, 0], graph_files.train[:, 1], n_nodes=graph_files.n_nodes)
        vectors = Cleora(dim=dim, iterations=iterations).fit(graph).vectors_
        console.print({"your split": nodeclf_evaluate(vectors, graph_files.labels, train_idx, test_idx)})
        return
    from sketchrec.data import registry
    dataset = dataset or "cora"
    ds = registry.load(dataset)
    if ds.labels is None:
        console.print(f"[red]error:[/] {dataset} has no node labels", soft_wrap=True)
        raise typer.Exit(2)
    graph = Graph.from_edges(ds.edges[:, 0], ds.edges[:, 1], n_nodes=ds.n_nodes)
    vectors = Cleora(dim=dim, iterations=iterations).fit(graph).vectors_
    if ds.split:
        console.print({"public split": nodeclf_evaluate(vectors, ds.labels, ds.split["train"], ds.split["test"],
                                                        val_idx=ds.split["val"])})
    console.print({"80/20, 5 seeds (mean, std)": nodeclf_random_splits(vectors, ds.labels)})


# -- evaluate / demo -------------------------------------------------------------

# Every command that takes a session benchmark by name takes your own click files too.
_DATASET = typer.Option(None, help="A session benchmark from `sketchrec datasets list` (default: diginetica; "
                                   "or give --train and --test).")
_TRAIN = typer.Option(None, "--train", help="Your own training clicks: CSV/TSV(.gz), Parquet or JSONL, one row per "
                                            "click (see --session-column, --item-column, --time-column).")
_TEST = typer.Option(None, "--test", help="Your own test clicks, same columns: every test session's prefixes are "
                                          "scored on their next item.")
_SESSION_COLUMN = typer.Option("session_id", help="Session id column of --train / --test.")
_ITEM_COLUMN = typer.Option("item_id", help="Item id column of --train / --test (raw ids of any type).")
_TIME_COLUMN = typer.Option("timestamp", help="Click time column of --train / --test ('' for none: file order).")


def _read_or_exit(reader, *args, **kwargs):
    """`reader(*args, **kwargs)`; one clear line and exit code 2 when a file cannot be read right."""
    from rich.markup import escape

    from sketchrec.data import DataValidationError
    try:
        return reader(*args, **kwargs)
    except (DataValidationError, FileNotFoundError, ValueError) as exc:
        console.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(2)


def _session_benchmark(dataset, train, test, session_column="session_id", item_column="item_id",
                       time_column="timestamp"):
    """A `SessionBenchmark` by registry name, or from --train / --test files; one clear line and
    exit code 2 for a bad combination or a file that cannot be read."""
    from rich.markup import escape

    from sketchrec.data.benchmark import SessionBenchmark
    from sketchrec.pipeline import load_session_benchmark
    if (train is None) != (test is None) or (dataset is not None and train is not None):
        raise typer.BadParameter("give either --dataset, or both --train and --test")
    t0 = time.perf_counter()
    if train is None:
        bench = _read_or_exit(load_session_benchmark, dataset or "diginetica")
    else:
        bench = _read_or_exit(SessionBenchmark.from_files, train, test, session=session_column, item=item_column,
                              time=time_column or None)
    console.print(f"[bold]{escape(str(bench))}[/] loaded in {time.perf_counter() - t0:.1f} s")
    return bench


@app.command()
def evaluate(
    dataset: Optional[str] = _DATASET,
    model: list[str] = typer.Option(["vsknn"], help="Model short name(s): pop, sr, iknn, sknn, vsknn, emde."),
    tune: bool = typer.Option(True, help="Tune settings on a validation split of train first."),
    max_test_pairs: Optional[int] = typer.Option(None, help="Evaluate a seeded subset of test pairs."),
    output: Optional[Path] = typer.Option(None, help="Also write the table (Markdown) here."),
    train: Optional[Path] = _TRAIN, test: Optional[Path] = _TEST, session_column: str = _SESSION_COLUMN,
    item_column: str = _ITEM_COLUMN, time_column: str = _TIME_COLUMN,
):
    """Fit, (tune on validation,) and evaluate session models on a benchmark or your own files."""
    bench = _session_benchmark(dataset, train, test, session_column, item_column, time_column)
    _run_session_job(bench, model, tune, max_test_pairs, output)


@train_app.command("auto")
def train_auto(
    dataset: Optional[str] = typer.Option(None, help="A session or top-k benchmark from `sketchrec datasets list` "
                                                     "(default: diginetica; or give --train and --test)."),
    output: Path = typer.Option(Path("runs/auto/bundle"), "--output", "-o", help="Where to write the winner's bundle."),
    model: list[str] = typer.Option([], "--model", help="Only these candidates (names as in the table; "
                                                        "default: all of them)."),
    blend: bool = typer.Option(True, help="Also try blends of two of the three best models."),
    max_valid: int = typer.Option(20_000, help="Validation rows scored per candidate (a seeded sample)."),
    train: Optional[Path] = _TRAIN, test: Optional[Path] = _TEST, session_column: str = _SESSION_COLUMN,
    item_column: str = _ITEM_COLUMN, time_column: str = _TIME_COLUMN,
):
    """Pick the best model for your data: fit every candidate (and blends of the best) on a
    validation split of the training data, refit the winner on all of it, test it once, bundle it."""
    from rich.table import Table

    from sketchrec.bundle import save_bundle
    from sketchrec.data.idmap import IdMap
    from sketchrec.pipeline import auto_candidates, auto_select, item_id_map
    if train is None and dataset is not None and _is_topk(dataset):
        from sketchrec.data import registry
        bench = _read_or_exit(registry.load, dataset)
        console.print(f"[bold]{bench}[/]")
    else:
        bench = _session_benchmark(dataset, train, test, session_column, item_column, time_column)
    kind = "session" if hasattr(bench, "test_prefixes") else "topk"
    candidates = auto_candidates(kind, bench.n_items)
    if model:
        unknown = sorted(set(model) - set(candidates))
        if unknown:
            raise typer.BadParameter(f"unknown candidate(s) {unknown}; candidates: {sorted(candidates)}")
        candidates = {k: v for k, v in candidates.items() if k in model}
    run = auto_select(bench, candidates, blend=blend, max_valid=max_valid, on_row=lambda r: console.print(
        f"  {r['name']:28s} " + " ".join(f"{k}={100 * v:.2f}" for k, v in r["metrics"].items() if k.endswith("@20"))
        + f" (fit {r['fit_s']:.1f} s)", soft_wrap=True))
    chosen = run.selection
    table = Table(title=f"{bench.name}: validation (%), best first; the winner refitted and tested once")
    for col in ("model", "kind", *run.metrics, "fit s"):
        table.add_column(col)
    rows = chosen.table(run.metrics)
    for row in rows[:15]:
        table.add_row(*map(str, row))
    console.print(table)
    if len(rows) > 15:
        console.print(f"({len(rows) - 15} lower rows not shown)")
    console.print(f"[bold]{chosen.best}[/] wins on validation {chosen.metric}; test: "
                  + ", ".join(f"{k} {100 * run.test[k]:.2f}" for k in run.metrics), soft_wrap=True)
    items = item_id_map(bench) if kind == "session" else IdMap([str(i) for i in range(bench.n_items)], "item")
    version = save_bundle(output, chosen.model, items, metrics=run.test,
                          config={"dataset": bench.name, "selected": chosen.best, "metric": chosen.metric})
    console.print(f"bundle written to {version}")


def _is_topk(name: str) -> bool:
    from sketchrec.data import registry
    try:
        return registry.get_spec(name).family == "topk-benchmark"
    except (KeyError, ValueError):
        return False


@train_app.command("emde")
def train_emde(
    dataset: Optional[str] = _DATASET,
    output: Path = typer.Option(Path("runs/emde/model.npz"), "--output", "-o", help="Where to save the model."),
    inputs: list[str] = typer.Option(list(_EMDE_SESSION["inputs"]), "--input",
                                     help="Input modality VIEW:SOURCE, repeatable (views: all, last, liked, "
                                          "disliked; sources: cleora:STEPS)."),
    outputs: list[str] = typer.Option(list(_EMDE_SESSION["outputs"]), "--output-source",
                                      help="Source of the output sketch, repeatable."),
    epochs: int = typer.Option(5, help="Training epochs (the maximum, with --validate)."),
    hidden: int = typer.Option(_EMDE_SESSION["hidden"], help="Hidden width."),
    n_blocks: int = typer.Option(_EMDE_SESSION["n_blocks"], help="Residual blocks."),
    n_sketches: int = typer.Option(_EMDE_SESSION["n_sketches"], help="Sketch depth N per source."),
    n_bits: int = typer.Option(_EMDE_SESSION["n_bits"], help="Bits per partition K (width 2^K)."),
    lr: float = typer.Option(_EMDE_SESSION["lr"], help="Adam learning rate."),
    lr_decay: float = typer.Option(_EMDE_SESSION["lr_decay"], help="Learning-rate factor per epoch."),
    batch_size: int = typer.Option(_EMDE_SESSION["batch_size"], help="Batch size."),
    validate: bool = typer.Option(True, help="Pick the epoch count on a validation split of train "
                                             "(last 10%), then retrain on all of train."),
    resume: bool = typer.Option(True, help="Resume from the checkpoint beside --output if one exists."),
    max_test_pairs: Optional[int] = typer.Option(None, help="Evaluate a seeded subset of test pairs."),
    seed: int = typer.Option(0, help="Seed."),
    train: Optional[Path] = _TRAIN, test: Optional[Path] = _TEST, session_column: str = _SESSION_COLUMN,
    item_column: str = _ITEM_COLUMN, time_column: str = _TIME_COLUMN,
):
    """Train EMDE (the `emde-session` preset, options on top) on a session benchmark or your own files,
    evaluate on its test pairs, save the model (npz, no pickle)."""
    from sketchrec.eval.protocols import evaluate_next_item, next_item_validation, select_epochs_then_refit
    from sketchrec.models import EMDE
    from sketchrec.training import valid_metric
    bench = _session_benchmark(dataset, train, test, session_column, item_column, time_column)
    params = {**presets.get("emde-session"), **dict(
        inputs=tuple(inputs), outputs=tuple(outputs), hidden=hidden, n_blocks=n_blocks, n_sketches=n_sketches,
        n_bits=n_bits, lr=lr, lr_decay=lr_decay, batch_size=batch_size, seed=seed)}
    output.parent.mkdir(parents=True, exist_ok=True)

    def show(epoch, model, row):
        mrr, hr = valid_metric(row, "MRR@20"), valid_metric(row, "HR@20")     # None without validation
        console.print(f"  epoch {epoch}: loss {row['loss']:.4f} ({row['seconds']:.0f} s)"
                      + (f", validation MRR@20 {100 * mrr:.2f} HR@20 {100 * hr:.2f}" if mrr is not None else ""))

    refit = dict(callback=show, checkpoint=output.with_suffix(".ckpt.npz") if resume else None)
    if validate:
        valid = bench.validation(0.1)
        console.print("choosing the epoch count on the validation split")
        model = select_epochs_then_refit(
            lambda n: EMDE(**params, epochs=n), valid.train, next_item_validation(valid), bench.train, max_epochs=epochs,
            probe_kwargs=dict(callback=show, checkpoint=output.with_suffix(".validation.ckpt.npz") if resume else None),
            refit_kwargs=refit, on_selected=lambda n: console.print(f"best epoch on validation: {n}")).model
    else:
        model = EMDE(**params, epochs=epochs).fit(bench.train, **refit)
    rows = np.arange(len(bench.test_targets))
    if max_test_pairs is not None and max_test_pairs < len(rows):
        rows = np.sort(np.random.default_rng(seed).choice(rows, max_test_pairs, replace=False))
    metrics, seconds = evaluate_next_item(model, bench.test_prefixes.take(rows), bench.test_targets[rows])
    model.save(output)
    console.print(" ".join(f"{k}={100 * v:.2f}" for k, v in metrics.items() if "@" in k)
                  + f"  ({len(rows) / seconds:,.0f} prefixes/s)")
    console.print(f"model written to {output}")


@train_app.command("emde-stream")
def train_emde_stream(
    log: Path = typer.Argument(..., help="Folder of Parquet files of events: every session contiguous, in "
                                         "click order, inside one row group (as `sketchrec.data.synthetic` writes)."),
    output: Path = typer.Option(Path("runs/emde/stream_model.npz"), "--output", "-o", help="Where to save the model."),
    epochs: int = typer.Option(1, help="Training epochs."),
    params: str = typer.Option("{}", help="JSON of EMDE settings over the `emde-session` preset."),
    buffer_events: int = typer.Option(2_000_000, help="Events per shuffle buffer."),
    n_items: Optional[int] = typer.Option(None, help="Item ids are already dense in [0, N) (else mapped)."),
    seed: int = typer.Option(0, help="Seed."),
    session_column: str = typer.Option("session_id", help="Session id column."),
    item_column: str = typer.Option("item_id", help="Item id column."),
    checkpoint: Optional[Path] = typer.Option(None, help="Resumable training: the state is written here (each "
                                                         "process of a torchrun its own <path>.rank<N>) every "
                                                         "--checkpoint-every seconds; run the same command again "
                                                         "after a kill to carry on from the last write."),
    checkpoint_every: float = typer.Option(600.0, min=0, help="Seconds between checkpoints inside an epoch."),
):
    """Train EMDE (target "next") from a log larger than memory, read a row group at a time.

    Under torchrun (RANK / WORLD_SIZE set), every process joins a gloo group and trains its share
    of each global batch (data-parallel, `EMDE.fit`); rank 0 saves the model and its history
    (loss and training examples of rank 0 per epoch, `<output>.history.json`)."""
    import os

    import torch.distributed as dist

    from sketchrec.data.stream import SessionStream
    from sketchrec.models import EMDE
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        dist.init_process_group("gloo")
    try:
        settings = {**presets.get("emde-session"), "progress": False, **json.loads(params), "epochs": epochs,
                    "seed": seed}
        stream = SessionStream(log, session_col=session_column, item_col=item_column, buffer_events=buffer_events,
                               n_items=n_items)
        if checkpoint is not None and world > 1:
            checkpoint = checkpoint.with_name(f"{checkpoint.name}.rank{dist.get_rank()}")
        if checkpoint is not None:
            checkpoint.parent.mkdir(parents=True, exist_ok=True)
        model = EMDE(**settings).fit(stream, checkpoint=checkpoint, checkpoint_every=checkpoint_every)
        if world == 1 or dist.get_rank() == 0:
            output.parent.mkdir(parents=True, exist_ok=True)
            model.save(output)
            output.with_suffix(".history.json").write_text(json.dumps(model.history_, indent=1))
            console.print(f"{len(stream):,} sessions, {world} process(es), {model.fit_seconds_:.1f} s; "
                          f"model written to {output}")
    finally:
        if world > 1:
            dist.destroy_process_group()


@app.command()
def similar(
    embeddings: Path = typer.Argument(..., help="Embeddings folder (vectors.npy + ids.parquet), e.g. from `sketchrec embed`."),
    items: list[str] = typer.Argument(..., help="Ids of the query items."),
    k: int = typer.Option(10, "-k", help="Results per query."),
    groups: Optional[Path] = typer.Option(None, help="CSV/Parquet mapping item ids to groups (products, identities): "
                                                     "results are then groups."),
    id_column: str = typer.Option("id", help="Item id column of --groups."),
    group_column: str = typer.Option("group", help="Group column of --groups."),
    mode: str = typer.Option("centroid", help="With --groups: 'centroid' (one vector per group) or 'instance'."),
    backend: str = typer.Option("exact", help="'exact' or 'hnsw' (approximate, faiss)."),
    save_index: Optional[Path] = typer.Option(None, help="Also save the built index to this folder."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Also write the results as CSV."),
):
    """Items (or groups) most similar to the given items, by cosine similarity of their embeddings."""
    from sketchrec.data.embeddings import Embeddings
    from sketchrec.retrieval import CentroidIndex
    if k < 1 or k > 10_000:
        raise typer.BadParameter("k must be between 1 and 10,000")
    emb = Embeddings.load(embeddings)
    look = emb.ids.lookup(items)
    if look.unknown:
        console.print(f"[yellow]unknown item id(s), skipped:[/] {', '.join(map(str, look.unknown[:20]))}")
    asked = [item for item, known in zip(items, look.known) if known]
    if not asked:
        raise typer.Exit(code=1)
    queries = emb.vectors[look.internal[look.known]]
    if groups is not None:
        from sketchrec.data.readers import read_columns
        table = read_columns(str(groups), columns=[id_column, group_column])
        look = emb.ids.lookup(table.column(id_column))
        labels = np.asarray(table.column(group_column).to_pylist(), dtype=object)[look.known]
        rows = look.internal[look.known]
        console.print(f"{len(rows):,} of {len(emb):,} embedded items have a group "
                      f"({len(np.unique(labels.astype(str))):,} groups)")
        index = CentroidIndex(mode, backend=backend).fit(emb.vectors[rows], labels.astype(str))
        names = None
    else:
        index = CentroidIndex("instance", backend=backend).fit(emb.vectors, np.arange(len(emb)))
        names = np.asarray(emb.ids.keys.to_pylist(), dtype=object)
    hits = index.search(queries, k=k)
    if save_index is not None:
        index.save(save_index)
        console.print(f"index written to {save_index}")
    table_out = Table(title=f"{k} most similar ({index.mode}, {index.backend})")
    for col in ("query", "rank", "result", "cosine"):
        table_out.add_column(col)
    records = []
    for q, (r_rows, r_groups, r_scores) in enumerate(zip(hits.rows, hits.groups, hits.scores)):
        for rank, (row, group, score) in enumerate(zip(r_rows, r_groups, r_scores), 1):
            if row < 0:
                continue
            result = str(names[row]) if names is not None else str(group)
            records.append((asked[q], rank, result, float(score)))
            table_out.add_row(str(asked[q]), str(rank), result, f"{score:.4f}")
    console.print(table_out)
    if output is not None:
        import pyarrow as pa
        import pyarrow.csv as pacsv
        pacsv.write_csv(pa.table({"query": [r[0] for r in records], "rank": [r[1] for r in records],
                                  "result": [r[2] for r in records], "cosine": [r[3] for r in records]}), output)


@train_app.command("crossmodal")
def train_crossmodal(
    output: Path = typer.Option(Path("runs/fashion-search"), "--output", "-o",
                                help="Where to write the search bundle (a versioned directory)."),
    dataset: Optional[str] = typer.Option(None, help="An image catalogue from `sketchrec datasets list` (default: "
                                                     "fashion-images; or give --catalogue and --images)."),
    text_column: Optional[str] = typer.Option(None, help="The catalogue's product title column (default: "
                                                         "productDisplayName for fashion-images, else title)."),
    catalogue: Optional[Path] = typer.Option(None, "--catalogue", help="Your own product table (CSV/TSV(.gz), "
                                                                       "Parquet, JSON): one row per product."),
    images: Optional[Path] = typer.Option(None, "--images", help="Folder of your product photos: <id>.jpg (or "
                                                                 ".jpeg/.png/.webp), or see --image-column."),
    id_column: str = typer.Option("id", help="Product id column of --catalogue."),
    image_column: Optional[str] = typer.Option(None, help="Column of --catalogue naming each photo's file "
                                                          "in --images (default: <id>.jpg etc.)."),
    pooling: str = typer.Option("temde", help="'temde' (T-EMDE sketch + a Linear head: the best on validation, "
                                              "docs/crossmodal.md), 'attention' (SGRAF-style) or 'mean'."),
    epochs: int = typer.Option(12, help="Training epochs (the best by validation R-sum is kept)."),
    region_pca: int = typer.Option(256, help="PCA of the 1280-d image regions to this many dims (0: none)."),
    lr: float = typer.Option(5e-4, help="AdamW learning rate."),
    seed: int = typer.Option(0, help="Seed."),
    threads: int = typer.Option(2, help="Torch threads."),
):
    """Train text -> image product search on a catalogue's photos and titles; index every product."""
    from sketchrec.embedders.features import catalogue_column, image_features, text_tokens
    from sketchrec.retrieval.catalogue import CatalogueSearch
    from sketchrec.retrieval.crossmodal import POOLINGS
    if pooling not in POOLINGS:
        raise typer.BadParameter(f"pooling must be one of {POOLINGS}")
    if (catalogue is None) != (images is None) or (dataset is not None and catalogue is not None):
        raise typer.BadParameter("give either --dataset, or both --catalogue and --images")
    if catalogue is None:
        dataset, text_column = dataset or "fashion-images", text_column or "productDisplayName"
    else:
        from sketchrec.data.catalogue import ImageCatalogue
        text_column = text_column or "title"
        dataset = _read_or_exit(ImageCatalogue, catalogue, images, id_column=id_column, text_column=text_column,
                                image_column=image_column)
    console.print(f"features of {dataset} (computed once, then cached)")
    ids, _, regions = image_features(dataset, threads=threads)
    tokens, mask = text_tokens(dataset, text_column, threads=threads)
    titles = catalogue_column(dataset, text_column)
    trainer = {"epochs": epochs, "lr": lr, "threads": threads,
               **({"d": 32, "sketch_head": True} if pooling == "temde" else {"dim": 1024})}
    search = CatalogueSearch(pooling, region_pca=region_pca, seed=seed, trainer_params=trainer).fit(
        regions, tokens, mask, ids, titles)
    m = search.metrics_
    console.print(f"held-out products ({search.config_['products']['test']:,}): text->image R@1 "
                  f"{100 * m['test_t2i_R@1']:.1f} R@10 {100 * m['test_t2i_R@10']:.1f} MRR {100 * m['test_t2i_MRR']:.1f}; "
                  f"image->text R@1 {100 * m['test_i2t_R@1']:.1f} R@10 {100 * m['test_i2t_R@10']:.1f}")
    version = search.save(output)
    console.print(f"search bundle written to {version}")


@app.command()
def search(
    model: Path = typer.Argument(..., help="A search bundle from `sketchrec train crossmodal`."),
    text: list[str] = typer.Option(..., "--text", "-t", help="Query text; repeat for several queries."),
    k: int = typer.Option(10, "-k", help="Results per query."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Also write the results as CSV."),
):
    """Products whose photos best match a text query, e.g. `sketchrec search runs/fashion-search --text "red running shoes"`."""
    from sketchrec.bundle import BundleError
    from sketchrec.retrieval.catalogue import CatalogueSearch
    if k < 1 or k > 10_000:
        raise typer.BadParameter("k must be between 1 and 10,000")
    try:
        engine = CatalogueSearch.load(model)
    except (BundleError, FileNotFoundError) as err:
        console.print(f"[red]error:[/] {err}", soft_wrap=True)
        raise typer.Exit(code=2) from None
    hits = engine.search(text, k=k, as_result=True)
    records = []
    for query, rows, scores in zip(text, hits.rows, np.round(hits.scores, 6).tolist()):
        table = Table(title=f"{query!r}: {k} best-matching products ({engine.config_['pooling']} pooling)")
        for col in ("rank", "id", "title", "cosine"):
            table.add_column(col)
        for rank, (row, score) in enumerate(zip(rows, scores), 1):
            item, title = engine.ids_[row].item(), engine.texts_[row]
            table.add_row(str(rank), str(item), title, f"{score:.4f}")
            records.append((query, rank, str(item), title, float(score)))
        console.print(table)
    if output is not None:
        import pyarrow as pa
        import pyarrow.csv as pacsv
        cols = ("query", "rank", "id", "title", "cosine")
        pacsv.write_csv(pa.table({c: [r[i] for r in records] for i, c in enumerate(cols)}), output)


@app.command()
def corrupt(
    source: Path = typer.Argument(..., help="CSV or Parquet file."),
    column: str = typer.Option(..., help="The text column to corrupt."),
    output: Path = typer.Option(..., "--output", "-o", help="Output file (CSV or Parquet by suffix)."),
    aspect: list[str] = typer.Option(..., help="Aspect name; repeat to compose (applied in order): article, swap, "
                                               "qwerty, remove_char, remove_space, misspelling, digits2words, "
                                               "homophones, negatives, positives, marks."),
    severity: float = typer.Option(1, help="Units per text (an integer) or a share of them (a number below 1)."),
    seed: int = typer.Option(0, help="Seed: the same seed gives the same output."),
):
    """Corrupt a text column with WildNLP-style aspects, streaming; other columns pass through."""
    from sketchrec.robustness.aspects import Compose, make
    from sketchrec.robustness.io import corrupt_file
    try:
        aspects = [make(a, severity, seed) for a in aspect]
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None
    chain = aspects[0] if len(aspects) == 1 else Compose(aspects)
    try:
        rows = corrupt_file(source, column, output, chain)
    except (ValueError, FileNotFoundError) as err:
        console.print(f"[red]error:[/] {err}", soft_wrap=True)
        raise typer.Exit(code=2) from None
    console.print(f"{rows:,} rows written to {output} ({chain})")


@robustness_app.command("report")
def robustness_report(
    output: Path = typer.Option(..., "--output", "-o", help="Markdown report; figures go in a folder beside it, "
                                                             "results in a .json beside it."),
    dataset: Optional[str] = typer.Option(None, help="A registered set: sst2 or ag-news."),
    train: Optional[Path] = typer.Option(None, help="Your own training file (CSV or Parquet)."),
    test: Optional[Path] = typer.Option(None, help="Your own test file (CSV or Parquet)."),
    text_column: str = typer.Option("text", help="Text column of --train / --test."),
    label_column: str = typer.Option("label", help="Label column of --train / --test."),
    features: str = typer.Option("minilm", help="minilm (MiniLM sentence embeddings) or ngrams (hashed character "
                                                "n-grams, fast)."),
    aspect: Optional[list[str]] = typer.Option(None, help="Aspect to test; repeat. Default: all eleven."),
    severities: str = typer.Option("1,3,5", help="Comma-separated severities (words affected per text)."),
    train_severity: int = typer.Option(3, help="Severity of the adversarial-training corruption."),
    n_train: Optional[int] = typer.Option(None, help="With --dataset: training texts (default 8,000 / 5,000)."),
    max_test: Optional[int] = typer.Option(None, help="Only the first N test texts."),
    probe: bool = typer.Option(True, help="Run the antonym verb-swap probe (needs WordNet)."),
    seed: int = typer.Option(0),
    threads: Optional[int] = typer.Option(None, help="Torch threads for MiniLM."),
):
    """Clean vs corrupted accuracy per aspect and severity, adversarial-training transfer, the Qwerty
    severity effect and the antonym probe, as a Markdown report with figures."""
    from sketchrec.robustness.aspects import ASPECTS
    from sketchrec.robustness.report import (FEATURIZERS, MiniLMFeatures, RobustnessStudy, labelled_dataset,
                                             read_labelled, write_report)
    if (dataset is None) == (train is None and test is None) or (train is None) != (test is None):
        raise typer.BadParameter("give either --dataset, or both --train and --test")
    if features not in FEATURIZERS:
        raise typer.BadParameter(f"--features must be one of {', '.join(FEATURIZERS)}")
    try:
        sevs = [int(v) for v in severities.split(",") if v.strip()]
        featurize = MiniLMFeatures(threads) if features == "minilm" else FEATURIZERS[features]()
        study = RobustnessStudy(featurize, aspects=aspect or list(ASPECTS), severities=sevs,
                                train_severity=train_severity, seed=seed, probe=probe)
        if dataset is not None:
            name = dataset
            train_texts, y_train, test_texts, y_test = labelled_dataset(dataset, n_train, seed)
        else:
            name = train.stem
            train_texts, y_train = read_labelled(train, text_column, label_column)
            test_texts, y_test = read_labelled(test, text_column, label_column)
        if max_test:
            test_texts, y_test = test_texts[:max_test], y_test[:max_test]
        results = {name: study.run(name, train_texts, y_train, test_texts, y_test)}
    except (ValueError, FileNotFoundError) as err:
        console.print(f"[red]error:[/] {err}", soft_wrap=True)
        raise typer.Exit(code=2) from None
    res = results[name]
    source = f"--dataset {dataset}" if dataset else f"--train {train} --test {test}"
    command = (f"sketchrec robustness report {source} --features {features} --severities {severities} "
               f"--train-severity {train_severity}" + "".join(f" --aspect {a}" for a in aspect or [])
               + ("" if probe else " --no-probe") + f" -o {output}")
    path = write_report(results, output, command=command, model=f"{features} features + logistic regression")
    worst = min(res["corrupted"], key=res["corrupted"].get)
    console.print(f"{name}: clean accuracy {100 * res['clean']:.2f}%, worst {worst} "
                  f"{100 * res['corrupted'][worst]:.2f}%; report in {path}")


@app.command()
def serve(
    ctx: typer.Context,
    bundle: Path = typer.Argument(..., help="A model bundle (sketchrec.bundle.save_bundle), or a search bundle "
                                            "from `sketchrec train crossmodal`."),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, help="Port."),
    api_key_file: Optional[Path] = typer.Option(None, help="Require the X-API-Key header to equal this file's "
                                                           "content (first line)."),
    api_key: Optional[str] = typer.Option(None, envvar="SKETCHREC_API_KEY",
                                          help="Require this X-API-Key header. Prefer $SKETCHREC_API_KEY or "
                                               "--api-key-file: a command-line value is visible to anyone in `ps`."),
    limit: list[str] = typer.Option([], help="Override a request limit, NAME=VALUE (repeatable; see "
                                             "sketchrec.serve.LIMITS), e.g. --limit max_body_bytes=4194304."),
    workers: int = typer.Option(1, min=1, help="Worker processes sharing the port and one memory-mapped copy "
                                               "of the model (one per core is the fastest for batches)."),
    threads: Optional[int] = typer.Option(None, min=1, help="Compute threads per worker (default: the cores "
                                                            "shared out among the workers)."),
    int8: bool = typer.Option(False, "--int8", help="EMDE only: int8 linear layers (a faster network, scores "
                                                    "that differ slightly; no /explain)."),
):
    """Serve a bundle over HTTP: /recommend, /similar, /search, /profile, /explain, /health, /metrics
    (docs at /docs); a search bundle answers /search (text -> products). Requests are bounded in
    size, work and time (sketchrec.serve.LIMITS)."""
    from sketchrec.bundle import BundleError
    from sketchrec.retrieval.catalogue import CatalogueSearch
    from sketchrec.serve import LIMITS, load_servable
    from sketchrec.serve import serve as run

    def fail(message: str):
        from rich.markup import escape
        console.print(f"[red]error:[/] {escape(message)}", soft_wrap=True)
        raise typer.Exit(code=2)

    if api_key_file is not None:
        if api_key is not None:
            fail("give the API key once: --api-key-file, --api-key or $SKETCHREC_API_KEY")
        try:
            lines = api_key_file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as err:
            fail(f"cannot read the API key file {api_key_file}: {err}")
        api_key = lines[0].strip() if lines else ""
    if api_key is not None and not api_key.strip():
        fail("the API key is empty")
    source = getattr(ctx.get_parameter_source("api_key"), "name", None)     # (typer vendors its own click)
    if api_key is not None and source == "COMMANDLINE":
        console.print("[yellow]warning:[/] --api-key is visible to every user of this machine in `ps`; "
                      "use --api-key-file or $SKETCHREC_API_KEY")
    limits = {}
    for item in limit:
        name, _, value = item.partition("=")
        if name not in LIMITS or not value:
            fail(f"--limit {item!r}: expected NAME=VALUE with NAME one of {', '.join(LIMITS)}")
        try:
            limits[name] = type(LIMITS[name])(value)
        except ValueError:
            fail(f"--limit {item!r}: {value!r} is not a {type(LIMITS[name]).__name__}")
    try:
        loaded = load_servable(bundle)
    except BundleError as err:
        fail(str(err))
    if isinstance(loaded, CatalogueSearch):
        what, version = f"a search over {len(loaded.ids_):,} products", loaded.path_.name
        if int8:
            fail("--int8 applies to EMDE bundles, not a search bundle")
    else:
        if loaded.items is None:
            fail(f"{bundle}: the bundle has no item ids and cannot be served")
        what, version = loaded.manifest["model_class"], loaded.path.name
    console.print(f"serving {what} ({version}) on http://{host}:{port} "
                  f"(OpenAPI docs at /docs{'; X-API-Key required' if api_key is not None else ''}"
                  f"{f'; {workers} workers' if workers > 1 else ''})")
    if int8 and not hasattr(loaded.model, "to_int8"):
        fail(f"--int8 applies to EMDE bundles, not {loaded.manifest['model_class']}")
    run(loaded, host=host, port=port, api_key=api_key, limits=limits, workers=workers, threads=threads, int8=int8)


@app.command()
def demo(
    dataset: Optional[str] = typer.Option(None, help="Session benchmark to run on (default: diginetica; or give "
                                                     "--train and --test)."),
    full: bool = typer.Option(False, "--full", help="The full job: every baseline's whole validation grid and "
                                                    "EMDE's full budget (3 epochs at hidden 1,024; `make demo FULL=1`)."),
    max_test_pairs: Optional[int] = typer.Option(None, help="Evaluate a seeded subset of test pairs."),
    output: Path = typer.Option(Path("runs/demo/results.md"), help="Where to write the results table."),
    emde: bool = typer.Option(True, help="Also train and evaluate EMDE."),
    serve: bool = typer.Option(True, help="Bundle the main model, serve it on loopback and answer a few requests."),
    train: Optional[Path] = _TRAIN, test: Optional[Path] = _TEST, session_column: str = _SESSION_COLUMN,
    item_column: str = _ITEM_COLUMN, time_column: str = _TIME_COLUMN,
):
    """The main job on real data: a session benchmark, baselines tuned on validation, and EMDE.

    Downloads the benchmark on first use (from its public source, or $SKETCHREC_MIRROR),
    tunes the baselines on a validation split of the training sessions, trains EMDE (Cleora item
    codes -> density sketches -> sketch-to-sketch network), ranks all items for every test
    prefix, prints the HR/MRR table, then bundles the model that is best on validation, serves
    it and answers requests. By
    default on a trimmed budget (a few minutes on 2 cores; what is trimmed is printed);
    --full runs every grid point and EMDE's full training.
    """
    from sketchrec.pipeline import DEMO_FULL, DEMO_QUICK, SESSION_MODELS, bundle_and_query
    plan = DEMO_FULL if full else DEMO_QUICK
    if train is None and test is None:
        _ensure_dataset(dataset or "diginetica")
    bench = _session_benchmark(dataset, train, test, session_column, item_column, time_column)
    console.print(f"[bold]demo ({plan.name})[/]: {plan.summary}")
    models = [m for m in SESSION_MODELS if m in plan.grids] + (["emde"] if emde else [])
    bench, run = _run_session_job(bench, models, True, max_test_pairs, output, keep_models=serve, plan=plan,
                                  validate_all=serve)
    if serve:
        # the model to serve is chosen on validation (MRR@20 of each model's chosen settings), never on test
        valid = {m: max(r["MRR@20"] for r in rows) for m, rows in run.validation.items()}
        name = max(valid, key=valid.get)
        console.print(f"serving [bold]{name}[/]: the best on validation (MRR@20 "
                      + ", ".join(f"{m} {100 * v:.2f}" for m, v in sorted(valid.items(), key=lambda kv: -kv[1]))
                      + ")", soft_wrap=True)
        metrics = next(r.metrics for r in run.results if r.model == name)
        out = bundle_and_query(bench, run.models[name], metrics, output.parent if output else Path("runs/demo"))
        console.print(f"[bold]{name}[/] bundled at {out['bundle']}; served on loopback:")
        for reply, ms in zip(out["responses"], out["latency_ms"]):
            console.print(f"  POST /recommend {reply['session']} -> {reply['items']} ({ms:.1f} ms)")


def _ensure_dataset(name: str) -> None:
    """Download `name` if its files are not in the data dir yet; one clear line if that fails."""
    from rich.markup import escape

    from sketchrec.data import registry
    from sketchrec.data.download import MissingDatasetError, NotDownloadableError, fetch
    if registry.info(name)["complete"]:
        return
    console.print(f"{name} is not in {registry.data_dir()} yet: downloading it from its source")
    t0 = time.perf_counter()
    try:
        fetch(name, include_optional=False)
    except (MissingDatasetError, NotDownloadableError, registry.ChecksumError) as exc:
        console.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(1)
    console.print(f"{name} downloaded, checked and converted in {time.perf_counter() - t0:.1f} s")


def _run_session_job(bench, models, tune, max_test_pairs, output, keep_models=False, plan=None, validate_all=False):
    """bench: a `SessionBenchmark`, or a registry name to load."""
    from sketchrec.eval.report import machine_line, results_markdown, results_rich_table
    from sketchrec.pipeline import session_baselines
    t0 = time.perf_counter()
    if isinstance(bench, str):
        bench = _session_benchmark(bench, None, None)
    metrics = ["HR@10", "MRR@10", "HR@20", "MRR@20"]
    run = session_baselines(
        bench, models, tune=tune, max_test_pairs=max_test_pairs, keep_models=keep_models,
        grids=plan.grids if plan else None, fixed=plan.fixed if plan else None, validate_all=validate_all,
        on_result=lambda r: console.print(
            f"  {r.model:6s} HR@20={100 * r.metrics['HR@20']:.2f} MRR@20={100 * r.metrics['MRR@20']:.2f} "
            f"(fit {r.fit_seconds:.1f} s, score {r.score_seconds:.1f} s) {r.params}"))
    console.print(results_rich_table(run.results, metrics, title=f"{bench.name}: test, full ranking (%)"))
    console.print(f"total {time.perf_counter() - t0:.1f} s")
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(f"# {bench.name}\n\n{machine_line()}\n\n"
                          + (f"Demo ({plan.name}): {plan.summary}\n\n" if plan else "")
                          + f"{results_markdown(run.results, metrics)}\n")
        console.print(f"table written to {output}")
    return bench, run


# -- bundles ----------------------------------------------------------------------------

bundle_app = typer.Typer(help="Model and search bundles: housekeeping.", no_args_is_help=True)
app.add_typer(bundle_app, name="bundle")


@bundle_app.command("gc")
def bundle_gc(
    path: Path = typer.Argument(..., help="A bundle directory (sketchrec.bundle.save_bundle, or a search bundle)."),
    keep: int = typer.Option(2, min=1, help="Complete versions kept; the current one always is."),
    min_age: Optional[float] = typer.Option(None, min=0, help="Seconds since its last change before a partial "
                                            "version no process is writing counts as stale (default: "
                                            "sketchrec.bundle.STALE_AFTER, 10)."),
):
    """Remove what aborted saves left (`.partial` versions no live process is writing) and versions beyond --keep."""
    from sketchrec.bundle import STALE_AFTER, BundleError, collect_garbage
    try:
        removed = collect_garbage(path, keep_versions=keep, min_age=STALE_AFTER if min_age is None else min_age)
    except BundleError as err:
        console.print(f"[red]error:[/] {err}", soft_wrap=True)
        raise typer.Exit(code=2) from None
    for where, size in removed:
        console.print(f"removed {where} ({size / 1e6:.1f} MB)")
    console.print(f"{len(removed)} removed, {sum(size for _, size in removed) / 1e6:.1f} MB freed")


if __name__ == "__main__":  # pragma: no cover
    app()
