"""Loaders of the registered datasets, one module per family.

Importing this package registers every built-in dataset with
`sketchrec.data.registry`: each module declares its datasets' files,
checksums, provenance and verified counts next to its loader functions.
Use `sketchrec.data.registry.load(name)` rather than calling loaders directly.

    sessions  session benchmarks (SessionBenchmark) and raw session samples (Interactions)
    ratings   MovieLens (Interactions), ML-100K knowledge graph, sequential sets
    graphs    GraphDataset / GraphClassificationDataset
    text      TextDataset, WildNLP resources, fashion catalogue table
    images    ImageDataset, FashionImages
    topk      TopkBenchmark: Gowalla, ML-1M, Last.fm top-k splits (train / valid / test)
"""

from sketchrec.data.loaders import graphs, images, ratings, sessions, text, topk  # noqa: F401  (registration)
