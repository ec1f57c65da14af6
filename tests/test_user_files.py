"""A newcomer's own files for the graph and catalogue commands (`eval linkpred/nodeclf --train/--test`,
`train crossmodal --catalogue/--images`): raw names mapped once over every file, clear errors."""

from __future__ import annotations

import io

import numpy as np
import pytest
from typer.testing import CliRunner

from sketchrec.cli import app
from sketchrec.data.catalogue import ImageCatalogue
from sketchrec.data.edge_lists import read_edge_split, read_labelled_graph


def ring(n: int, prefix: str = "n") -> str:
    """A ring with chords: every node has degree 4, so Cleora's vectors are informative."""
    rows = [f"{prefix}{i},{prefix}{(i + d) % n}" for i in range(n) for d in (1, 2)]
    return "source,target\n" + "\n".join(rows) + "\n"


def test_edge_split_numbers_nodes_over_both_files(tmp_path):
    (tmp_path / "train.csv").write_text("source,target\nb,a\na,c\n")
    (tmp_path / "test.csv").write_text("source,target\nc,d\n")      # d: only in the test file
    split = read_edge_split(tmp_path / "train.csv", tmp_path / "test.csv")
    assert split.nodes.to_external(range(split.n_nodes)) == ["b", "a", "c", "d"]
    np.testing.assert_array_equal(split.train, [[0, 1], [1, 2]])
    np.testing.assert_array_equal(split.test, [[2, 3]])


def test_edge_split_compares_integer_and_text_names_as_text(tmp_path):
    (tmp_path / "train.csv").write_text("source,target\n1,2\n")
    (tmp_path / "test.csv").write_text("source,target\n2,x\n")
    split = read_edge_split(tmp_path / "train.csv", tmp_path / "test.csv")
    assert split.nodes.to_external(range(split.n_nodes)) == ["1", "2", "x"]
    np.testing.assert_array_equal(split.test, [[1, 2]])


def test_labelled_graph_and_its_errors(tmp_path):
    (tmp_path / "edges.csv").write_text("source,target\nu,v\nv,w\n")
    (tmp_path / "train.csv").write_text("node,label\nu,red\nv,blue\n")
    (tmp_path / "test.csv").write_text("node,label\nw,red\nz,blue\n")     # z: no edge at all
    graph, tr, te = read_labelled_graph(tmp_path / "edges.csv", tmp_path / "train.csv", tmp_path / "test.csv")
    assert graph.n_nodes == 4 and graph.label_names == ["red", "blue"]
    np.testing.assert_array_equal(graph.labels[np.r_[tr, te]], [0, 1, 0, 1])
    with pytest.raises(ValueError, match="in both"):
        read_labelled_graph(tmp_path / "edges.csv", tmp_path / "train.csv", tmp_path / "train.csv")
    (tmp_path / "twice.csv").write_text("node,label\nw,red\nw,blue\n")
    with pytest.raises(ValueError, match="listed twice"):
        read_labelled_graph(tmp_path / "edges.csv", tmp_path / "train.csv", tmp_path / "twice.csv")


def test_cli_linkpred_and_nodeclf_on_files(tmp_path):
    runner = CliRunner()
    n = 60
    (tmp_path / "train.csv").write_text(ring(n))
    (tmp_path / "test.csv").write_text("source,target\nn0,n3\nn10,n13\nn20,n23\n")
    result = runner.invoke(app, ["eval", "linkpred", "--train", str(tmp_path / "train.csv"), "--test",
                                 str(tmp_path / "test.csv"), "--dim", "32"])
    assert result.exit_code == 0, result.output
    assert "'n_test': 3" in result.output and "60 nodes, 120 training edges, 3 test edges" in result.output
    # two communities joined by one edge; the labels follow the communities
    edges = ring(20, "a") + ring(20, "b").split("\n", 1)[1] + "a0,b0\n"
    (tmp_path / "edges.csv").write_text(edges)
    (tmp_path / "ltrain.csv").write_text("node,label\n" + "".join(f"{c}{i},{c}\n" for c in "ab" for i in range(0, 20, 2)))
    (tmp_path / "ltest.csv").write_text("node,label\n" + "".join(f"{c}{i},{c}\n" for c in "ab" for i in range(1, 20, 2)))
    result = runner.invoke(app, ["eval", "nodeclf", "--edges", str(tmp_path / "edges.csv"), "--train",
                                 str(tmp_path / "ltrain.csv"), "--test", str(tmp_path / "ltest.csv"), "--dim", "32"])
    assert result.exit_code == 0, result.output
    accuracy = float(result.output.split("'accuracy':")[1].split(",")[0])
    assert accuracy > 0.9, result.output
    result = runner.invoke(app, ["eval", "nodeclf", "--edges", str(tmp_path / "edges.csv")])
    assert result.exit_code == 2 and "--edges, --train and --test" in result.output
    result = runner.invoke(app, ["eval", "linkpred", "--train", str(tmp_path / "train.csv"), "--test",
                                 str(tmp_path / "test.csv"), "--source-column", "from"])
    assert result.exit_code == 2 and result.output.startswith("error:") and "'from'" in result.output


def _png(tmp_path, name: str) -> None:
    from PIL import Image
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buf, format="PNG")
    (tmp_path / name).write_bytes(buf.getvalue())


def test_image_catalogue_finds_every_image_first(tmp_path):
    pytest.importorskip("PIL")
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("sku-1.png", "sku-2.jpg"):
        _png(photos, name)
    (tmp_path / "products.csv").write_text("id,title\nsku-1,red shirt\nsku-2,red hat\n")
    cat = ImageCatalogue(tmp_path / "products.csv", photos)
    assert cat.name == "products" and list(cat.ids) == ["sku-1", "sku-2"] and len(cat) == 2
    assert cat.read_bytes(cat.ids[1]) == (photos / "sku-2.jpg").read_bytes()
    (tmp_path / "more.csv").write_text("id,title\nsku-1,red shirt\nsku-3,blue hat\n")
    with pytest.raises(FileNotFoundError, match="1 of 2 products have no image, e.g. product 'sku-3'"):
        ImageCatalogue(tmp_path / "more.csv", photos)
    (tmp_path / "dup.csv").write_text("id,title\nsku-1,red shirt\nsku-1,red hat\n")
    with pytest.raises(ValueError, match="appears 2 times"):
        ImageCatalogue(tmp_path / "dup.csv", photos)
    (tmp_path / "files.csv").write_text("id,title,file\n7,red shirt,sku-1.png\n")
    cat = ImageCatalogue(tmp_path / "files.csv", photos, image_column="file")
    assert list(cat.ids) == ["7"] and cat.read_bytes(7) == cat.read_bytes("7") == (photos / "sku-1.png").read_bytes()


def test_cli_train_crossmodal_rejects_half_a_catalogue(tmp_path):
    result = CliRunner().invoke(app, ["train", "crossmodal", "--catalogue", str(tmp_path / "p.csv")])
    assert result.exit_code == 2 and "--catalogue and --images" in result.output
    (tmp_path / "p.csv").write_text("id,title\na,x\n")
    result = CliRunner().invoke(app, ["train", "crossmodal", "--catalogue", str(tmp_path / "p.csv"), "--images",
                                      str(tmp_path / "nowhere")])
    assert result.exit_code == 2 and "does not exist" in result.output
