"""The eleven WildNLP aspects: each changes what it should and nothing else; seeded; zero = identity."""

import hashlib
import re

import numpy as np
import pytest

from sketchrec.data import registry
from sketchrec.robustness import ASPECTS, Compose, make
from sketchrec.robustness.aspects import RESOURCES, resources

TEXT = ("The quick brown fox, a good animal, jumps over an ugly dog and accepts 3.5 apples in 2019! "
        "It is absolutely terrible, but I accept it: the weather is nice.")


def words(text):
    return text.split()


def test_word_lists_ship_as_package_data_identical_to_wildnlp():
    """They need no staged dataset: the same bytes and counts as the registry's `wildnlp-resources`."""
    spec = registry.get_spec("wildnlp-resources")
    shipped = sorted(p.name for p in RESOURCES.iterdir() if p.name != "README.md")
    assert shipped == ["homophones.json", "misspellings.json", "negative_words.txt", "positive_words.txt",
                       "qwerty.json"]
    for name in shipped:
        digest = hashlib.sha256((RESOURCES / name).read_bytes()).hexdigest()
        assert digest == spec.files[f"wildnlp-resources/{name}"].sha256, name
    assert [len(resources()[key]) for key in ("homophones", "misspellings", "qwerty", "positive", "negative")] == \
        [spec.counts[key] for key in ("homophones", "misspellings", "qwerty", "positive_words", "negative_words")]


@pytest.mark.parametrize("name", sorted(ASPECTS))
def test_zero_severity_is_identity_and_seed_is_deterministic(name):
    assert make(name, 0)(TEXT) == TEXT
    a, b = make(name, 2, seed=7), make(name, 2, seed=7)
    assert a(TEXT) == b(TEXT)
    # no global RNG: other draws in between change nothing
    np.random.seed(1)
    first = a(TEXT)
    np.random.random(100)
    assert a(TEXT) == first
    # order-independent over a list
    texts = [TEXT, "A dog is good.", "the 7 cats"]
    assert a.apply_many(texts)[::-1] == a.apply_many(texts[::-1])
    assert a("") == "" and a(None) is None


@pytest.mark.parametrize("name", sorted(ASPECTS))
def test_some_seed_changes_the_text(name):
    outs = {make(name, 2, seed=s)(TEXT) for s in range(5)}
    assert any(o != TEXT for o in outs)


def changed_words(before, after):
    a, b = words(before), words(after)
    assert len(a) == len(b), (before, after)
    return [(x, y) for x, y in zip(a, b) if x != y]


def test_swap_swaps_two_neighbouring_letters_in_n_words():
    out = make("swap", 3, seed=0)(TEXT)
    diff = changed_words(TEXT, out)
    assert len(diff) == 3
    for x, y in diff:
        assert sorted(x) == sorted(y) and len(x) == len(y)
        spots = [i for i in range(len(x)) if x[i] != y[i]]
        assert len(spots) == 2 and spots[1] == spots[0] + 1


def test_qwerty_replaces_one_letter_by_a_neighbouring_key():
    keys = resources()["qwerty"]
    diff = changed_words(TEXT, make("qwerty", 4, seed=3)(TEXT))
    assert len(diff) == 4
    for x, y in diff:
        spots = [i for i in range(len(x)) if x[i] != y[i]]
        assert len(spots) == 1
        assert y[spots[0]].lower() in keys[x[spots[0]].lower()]


def test_remove_char_drops_exactly_one_character_per_word():
    diff = changed_words(TEXT, make("remove_char", 5, seed=1)(TEXT))
    assert len(diff) == 5 and all(len(y) == len(x) - 1 for x, y in diff)


def test_remove_space_joins_words():
    out = make("remove_space", 3, seed=0)(TEXT)
    assert out.replace(" ", "") == TEXT.replace(" ", "") and out.count(" ") == TEXT.count(" ") - 3


def test_article_removes_or_swaps_articles_only():
    out = make("article", 1.0 - 1e-9, seed=2)(TEXT)     # a share: every article
    rest = [w for w in words(TEXT) if re.sub(r"\W", "", w).lower() not in ("a", "an", "the")]
    assert [w for w in words(out) if re.sub(r"\W", "", w).lower() not in ("a", "an", "the")] == rest
    kept = [w.lower() for w in words(out) if re.sub(r"\W", "", w).lower() in ("a", "an", "the")]
    originals = [w.lower() for w in words(TEXT) if re.sub(r"\W", "", w).lower() in ("a", "an", "the")]
    assert len(kept) <= len(originals) and out != TEXT


@pytest.mark.parametrize("name,table", [("misspelling", "misspellings"), ("homophones", "homophones")])
def test_lookup_aspects_use_their_lists(name, table):
    lookup = resources()[table]
    text = "I accept the absence of a right answer."
    out = make(name, 10, seed=0)(text)
    for x, y in changed_words(text, out):
        core_x, core_y = re.sub(r"\W", "", x).lower(), re.sub(r"\W", "", y).lower()
        assert core_x in lookup and core_y in [v.lower().replace(" ", "") for v in lookup[core_x]]


def test_digits_to_words():
    out = make("digits2words", 5)(TEXT)
    assert "three point five" in out and "two thousand and nineteen" in out and not re.search(r"\d", out)


@pytest.mark.parametrize("name,lexicon", [("negatives", "negative"), ("positives", "positive")])
def test_sentiment_masking_masks_one_character_of_opinion_words(name, lexicon):
    vocab = resources()[lexicon]
    diff = changed_words(TEXT, make(name, 10, seed=0)(TEXT))
    assert diff
    for x, y in diff:
        assert re.sub(r"\W", "", x).lower() in vocab
        assert y.count("*") == 1 and len(y) == len(x)


def test_marks_add_or_remove_punctuation_only():
    out = make("marks", 6, seed=4)(TEXT)
    strip = lambda t: re.sub(r"[.,!?;:]", "", t)  # noqa: E731
    assert strip(out) == strip(TEXT) and out != TEXT


def test_fractional_severity_is_a_share_of_eligible_words():
    n_words = len(words(TEXT))
    diff = changed_words(TEXT, make("remove_char", 0.5, seed=0)(TEXT))
    assert abs(len(diff) - round(0.5 * n_words)) <= 1
    with pytest.raises(ValueError):
        make("swap", 1.5)
    with pytest.raises(ValueError, match="unknown aspect"):
        make("leetspeak")


def test_compose_applies_in_order():
    both = make("digits2words", 5) | make("swap", 1, seed=2)
    assert isinstance(both, Compose)
    assert both(TEXT) == make("swap", 1, seed=2)(make("digits2words", 5)(TEXT))


def test_corrupt_cli_streams_csv_and_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    from typer.testing import CliRunner

    from sketchrec.cli import app
    src = tmp_path / "in.csv"
    src.write_text("id,title,price\n1,Red running shoes for men,10\n2,,20\n3,\"Blue jeans, slim fit\",30\n")
    runner = CliRunner()
    res = runner.invoke(app, ["corrupt", str(src), "--column", "title", "--aspect", "qwerty", "--severity", "3",
                              "-o", str(tmp_path / "out.csv")])
    assert res.exit_code == 0, res.output
    out = pa.csv.read_csv(tmp_path / "out.csv")
    assert out.column("id").to_pylist() == [1, 2, 3] and out.column("price").to_pylist() == [10, 20, 30]
    titles = out.column("title").to_pylist()
    assert titles[0] == make("qwerty", 3)("Red running shoes for men") and titles[1] in (None, "")
    res = runner.invoke(app, ["corrupt", str(src), "--column", "title", "--aspect", "swap", "--aspect", "marks",
                              "-o", str(tmp_path / "out.parquet")])
    assert res.exit_code == 0, res.output
    assert pq.read_table(tmp_path / "out.parquet").num_rows == 3
    res = runner.invoke(app, ["corrupt", str(src), "--column", "nope", "--aspect", "swap", "-o",
                              str(tmp_path / "x.csv")])
    assert res.exit_code == 2 and "column 'nope'" in res.output and not (tmp_path / "x.csv").exists()
    res = runner.invoke(app, ["corrupt", str(src), "--column", "title", "--aspect", "leet", "-o",
                              str(tmp_path / "x.csv")])
    assert res.exit_code == 2
