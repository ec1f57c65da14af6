"""Labelled text (SST-2, AG News), WildNLP samples and corruption resources, and the
fashion product catalogue (titles + category hierarchy)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sketchrec.data.loaders._parse import read_csv, read_string_columns
from sketchrec.data.registry import DatasetSpec, Source, file_table, raw_url, recipe, register


@dataclass
class TextDataset:
    """Texts with one class label each.

    texts : list[str] of length n.  labels : (n,) int64 in [0, len(label_names)).
    split : which split of the source ("train", "dev", "test", ...).
    """

    name: str
    texts: list
    labels: np.ndarray
    split: str
    label_names: list
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.texts)

    def __repr__(self) -> str:
        counts = np.bincount(self.labels, minlength=len(self.label_names)).tolist()
        return f"TextDataset({self.name!r}, split={self.split!r}: {len(self):,} texts, per class {counts})"


_SST_FILES = {"train": "train.tsv.gz", "dev": "dev.tsv", "test": "test_labeled.tsv"}


def load_sst2(paths: dict, *, split: str = "train") -> TextDataset:
    """SST-2 binary sentiment: split "train" (67,349 phrases and sentences), "dev" (872)
    or "test" (1,821 labelled sentences). Labels: 0 = negative, 1 = positive."""
    if split not in _SST_FILES:
        raise ValueError(f"split must be one of {list(_SST_FILES)}, got {split!r}")
    table = read_string_columns(paths[f"text/sst2/{_SST_FILES[split]}"], header=True)
    labels = pc.cast(table.column("label"), pa.int64()).to_numpy()
    return TextDataset("sst2", table.column(1).to_pylist(), labels, split, ["negative", "positive"])


_AG_NAMES = ["World", "Sports", "Business", "Sci/Tech"]


def load_ag_news(paths: dict) -> TextDataset:
    """AG News test split. texts = title + " " + description, the literal
    backslashes (line breaks in the original) replaced by spaces. labels are the
    source's 1..4 minus one (0 = World, 1 = Sports, 2 = Business, 3 = Sci/Tech);
    meta holds the raw "titles" and "descriptions"."""
    t = read_csv(paths["text/ag_news/test.csv"], column_types={"label": pa.int64(), "title": pa.string(),
                                                               "description": pa.string()})
    title, desc = (pc.replace_substring(t.column(c), "\\", " ") for c in ("title", "description"))
    texts = pc.binary_join_element_wise(title, desc, " ").to_pylist()
    return TextDataset("ag-news", texts, t.column("label").to_numpy() - 1, "test", list(_AG_NAMES),
                       meta={"titles": t.column("title").to_pylist(),
                             "descriptions": t.column("description").to_pylist()})


def _conll_sentences(path: Path) -> list[list[tuple]]:
    """CoNLL-2003 columns -> sentences of (token, pos, chunk, ner); -DOCSTART- skipped."""
    sentences, current = [], []
    for line in path.read_text(encoding="utf-8").splitlines() + [""]:
        if not line.strip():
            if current:
                sentences.append(current)
            current = []
        elif not line.startswith("-DOCSTART-"):
            current.append(tuple(line.split()))
    return sentences


def load_wildnlp_samples(paths: dict) -> dict:
    """WildNLP's test samples -> dict: "squad_v1", "squad_v2" (parsed JSON),
    "snli" (list of dicts), "conll2003" (list of sentences of (token, pos,
    chunk, ner)), "imdb" (TextDataset, 1 = positive), "paths" (relpath -> Path)."""
    base = "text/wildnlp-samples/"
    out = {"paths": dict(paths)}
    for key, file in (("squad_v1", "squad_v1_sample.json"), ("squad_v2", "squad_v2_sample.json")):
        out[key] = json.loads(Path(paths[base + file]).read_text(encoding="utf-8"))
    lines = Path(paths[base + "snli_sample.jsonl"]).read_text(encoding="utf-8").splitlines()
    out["snli"] = [json.loads(line) for line in lines if line.strip()]
    out["conll2003"] = _conll_sentences(Path(paths[base + "conll2003_sample.txt"]))
    reviews = sorted(rel for rel in paths if "/imdb_sample/" in rel)
    texts = [Path(paths[rel]).read_text(encoding="utf-8") for rel in reviews]
    labels = np.array([1 if "/pos/" in rel else 0 for rel in reviews], dtype=np.int64)
    ratings = [int(Path(rel).stem.split("_")[1]) for rel in reviews]
    out["imdb"] = TextDataset("wildnlp-imdb-sample", texts, labels, "sample", ["negative", "positive"],
                              meta={"files": reviews, "ratings": ratings})
    return out


def load_wildnlp_resources(paths: dict) -> dict:
    """WildNLP corruption resources -> dict: homophones, misspellings (word -> list),
    qwerty, ocr, ocr_pl (char -> confusable chars), positive_words, negative_words
    (lists from the Hu & Liu lexicon, Latin-1, ';' header lines dropped)."""
    out = {}
    for rel, path in paths.items():
        stem = Path(rel).stem
        if rel.endswith(".json"):
            out[stem] = json.loads(Path(path).read_text(encoding="utf-8"))
        else:
            words = Path(path).read_text(encoding="latin-1").splitlines()
            out[stem] = [w.strip() for w in words if w.strip() and not w.startswith(";")]
    return out


def load_fashion_catalog(paths: dict) -> pa.Table:
    """Fashion product catalogue -> pyarrow Table, one row per product: id (int64),
    productDisplayName, gender, masterCategory, subCategory, articleType,
    baseColour, season, year, usage (styles.csv and styles_text.csv are row-aligned)."""
    styles = read_csv(paths["fashion-product-catalog/styles.csv"],
                      column_types={"id": pa.int64(), "year": pa.string()})
    titles = read_csv(paths["fashion-product-catalog/styles_text.csv"],
                      column_types={"productDisplayName": pa.string()})
    if styles.num_rows != titles.num_rows:
        raise ValueError(f"styles.csv has {styles.num_rows} rows but styles_text.csv {titles.num_rows}")
    return styles.add_column(1, "productDisplayName", titles.column("productDisplayName"))


# -- catalogue ---------------------------------------------------------------------

register(DatasetSpec(
    "sst2", "text", "Stanford Sentiment Treebank, binary (GLUE train/dev + labelled sentence test)",
    {**file_table("""
84207e6be5873fb18db798cc6faec86871f5a426554650ff64a1c34e87665f6f  94414  text/sst2/dev.tsv
fcd46f967b7b8efd8b5398481dadf873886298d092195167af907fd532e81e1c  193576  text/sst2/test_labeled.tsv
""", repo="awake020/pytorch_Bert_sst2", commit="ce2ab1719d32182e6233b24b2de246bd32814fde",
        remote_path={"text/sst2/dev.tsv": "SST-2/dev.tsv", "text/sst2/test_labeled.tsv": "SST-2/test.tsv"}),
     **file_table("""
c06f9a3f33af33f5dbc8b322f52a960ab77afe62d8a7f2f83c50807b8961f56b  1446698  text/sst2/train.tsv.gz
""", note="gzip of the unchanged SST-2/train.tsv of awake020/pytorch_Bert_sst2; a re-made gzip "
        "differs in its header bytes", recipes=lambda rel: recipe("gzip", Source(
            raw_url("awake020/pytorch_Bert_sst2", "ce2ab1719d32182e6233b24b2de246bd32814fde", "SST-2/train.tsv"),
            "e981ceb4fe6c9acd1c79851d0d091b9e78103f1f2a399ca83dda27915d41c56c", 3806081), level=9))},
    "R. Socher et al. Recursive Deep Models for Semantic Compositionality Over a Sentiment Treebank. "
    "EMNLP 2013; A. Wang et al. GLUE. ICLR 2019", "none stated in the source repository",
    "awake020/pytorch_Bert_sst2@ce2ab1719d32182e6233b24b2de246bd32814fde",
    dict(train=67_349, train_pos=37_569, dev=872, dev_pos=444, test=1_821, test_pos=909), load_sst2))

register(DatasetSpec(
    "ag-news", "text", "AG News topic classification, test split (4 classes x 1,900)",
    file_table("""
72b844642f92fb74fe397f0d1dd8a46d4cfd6fff60bc5c1a214fe40c44708fd7  1831781  text/ag_news/test.csv
""", repo="madhubandru/Text-Classification-on-News-Articles-using-BERT-Framework",
        commit="082f2db7c08a8fa3e19c46df0b4b5b0a5f81d1cd", remote_path=lambda rel: "ag_news_csv/test.csv"),
    "X. Zhang, J. Zhao, Y. LeCun. Character-level Convolutional Networks for Text Classification. NeurIPS 2015",
    "none stated (research use by AG's corpus authors)",
    "madhubandru/Text-Classification-on-News-Articles-using-BERT-Framework@082f2db7c08a8fa3e19c46df0b4b5b0a5f81d1cd",
    dict(rows=7_600, per_class=1_900), load_ag_news))

_WILDNLP = dict(repo="MI2DataLab/WildNLP", commit="c8b53b41704576e36d5cd15f0b3e2de098bc8029")
register(DatasetSpec(
    "wildnlp-samples", "text", "WildNLP's test samples: SQuAD 1.1/2.0, SNLI, CoNLL-2003, IMDB",
    file_table("""
ca2766ee412d1fd9dcafe998f5114a0a8ee2523b7c0e50db6fd5903d5f428af4  263  text/wildnlp-samples/conll2003_sample.txt
55e390cdf9c4d3e19088fa3ca8e82e257b65a71d209d805f4c1163a3bab03991  900  text/wildnlp-samples/imdb_sample/neg/0_2.txt
ef914478f529ab75e614f83331344d5205ff88512d26b9eb6aa259654e0972bf  715  text/wildnlp-samples/imdb_sample/neg/1_3.txt
27eac140b5537a2c9bb3a02de6e15a361f337598a4c9968196f6ad65d0731faa  1435  text/wildnlp-samples/imdb_sample/neg/2_3.txt
2bde2e7ffc81ed455099c43eb35b67ab5819b52299cfc0afba063661f93ad896  794  text/wildnlp-samples/imdb_sample/pos/0_10.txt
e41756e582e632e38715e1b6cfb0a4c52d769545fb29e753330b5cc518739bc4  692  text/wildnlp-samples/imdb_sample/pos/1_10.txt
17e72fe72a8f0aeacfa775a3bfc616707294464d7d96d584a39f2ee7c4c73045  1703  text/wildnlp-samples/imdb_sample/pos/2_7.txt
038331ed04e0094a2a1b6f3ae54e2723a04c4449cda5af7b6730a81da586d354  3185  text/wildnlp-samples/snli_sample.jsonl
eded752aaf40f08b6835967473e6b37652fde231eea23c2bf8e04acc3e06d077  353718  text/wildnlp-samples/squad_v1_sample.json
6739986fe1f4dfb927cbcf25a442c7f79837af6c3df3e3cb31f6fd256c3ed274  227520  text/wildnlp-samples/squad_v2_sample.json
""", remote_path=lambda rel: "tests/datests/data/" + rel.split("/", 2)[2], **_WILDNLP),
    "D. Rychalska et al. Models in the Wild: On Corruption Robustness of Neural NLP Systems. ICONIP 2019; "
    "P. Rajpurkar et al. EMNLP 2016, ACL 2018 (SQuAD)",
    "BSD (WildNLP setup.py); SQuAD and SNLI CC BY-SA 4.0",
    "MI2DataLab/WildNLP@c8b53b41704576e36d5cd15f0b3e2de098bc8029",
    dict(squad_v1_questions=1_057, squad_v2_questions=626, squad_v2_unanswerable=333, snli=3, imdb=6),
    load_wildnlp_samples))

register(DatasetSpec(
    "wildnlp-resources", "text", "WildNLP corruption resources: homophones, misspellings, keyboard and "
    "OCR confusions, Hu & Liu opinion lexicon",
    file_table("""
da412a2ddbccf1ebe3a0ea49e72d93b4f11bd6881b79a1f93a9aae3bad76d429  14707  wildnlp-resources/homophones.json
8706a0dc4184e576eba23a10a40283f531766669b76bb6929b16b6cf08b02a1b  8331  wildnlp-resources/misspellings.json
e8f170c65933fc66be3f1c1f27f6aaf17f68ed79de41086a53debfd791d7fbc8  46029  wildnlp-resources/negative_words.txt
4d15bc3b64b0b3e40594b365202f9d3c3c2b8b8af473290f4839e780580bea36  425  wildnlp-resources/ocr.json
d39c6a60539a45ac5fe532b5ffac79f0958722ebf37c0f8fc51710faf2a40776  639  wildnlp-resources/ocr_pl.json
3102f80c4c7c683470b7741bf4262cdaadbec8add9e001c42df89f24fdf300a7  20356  wildnlp-resources/positive_words.txt
45ebafa9e37489f1f192f055eee247b3d1f0f19c16e2ac1af5a676a1b5cedff8  491  wildnlp-resources/qwerty.json
""", remote_path=lambda rel: "wildnlp/aspects/auxiliary/" + rel.rsplit("/", 1)[1], **_WILDNLP),
    "D. Rychalska et al. ICONIP 2019 (WildNLP); M. Hu, B. Liu. Mining and Summarizing Customer Reviews. "
    "KDD 2004", "BSD (WildNLP setup.py)", "MI2DataLab/WildNLP@c8b53b41704576e36d5cd15f0b3e2de098bc8029",
    dict(homophones=469, misspellings=198, qwerty=26, ocr=27, ocr_pl=40, positive_words=2_006,
         negative_words=4_783), load_wildnlp_resources))

register(DatasetSpec(
    "fashion-catalog", "text", "Fashion product catalogue (Kaggle Fashion Product Images styles.csv): "
    "titles and category hierarchy, no images",
    file_table("""
b5451284ea74ad2b93cc7bbfbfa8334457661a3cb898fc590a1de80f0a1a18de  2790724  fashion-product-catalog/styles.csv
4245371ef7cdf8b79a2ed0fffccf77654eb27af70d625403e23fb6ef57e90840  1629403  fashion-product-catalog/styles_text.csv
""", repo="animmala3942/FashionProductRecommendationSystem", commit="91e8036739fe4f903aaa4a95009a13d4bc7cb542"),
    "P. Aggarwal. Fashion Product Images Dataset (Kaggle)", "none stated in the source repository",
    "animmala3942/FashionProductRecommendationSystem@91e8036739fe4f903aaa4a95009a13d4bc7cb542",
    dict(rows=44_446, sub_categories=45, article_types=143, apparel=21_400), load_fashion_catalog))
