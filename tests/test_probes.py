"""Antonym verb swap probe (WordNet from Debian's wordnet-base)."""

import pytest

from sketchrec.robustness import probes

pytestmark = pytest.mark.skipif(not probes.Path("/usr/share/wordnet/data.verb").exists()
                                and not probes.os.environ.get("WNHOME"),
                                reason="WordNet not installed (apt-get install wordnet-base)")


def test_antonyms_follow_the_most_frequent_sense():
    wn = probes.wordnet()
    assert wn["antonyms"]["succeed"] == ["fail"] and wn["antonyms"]["love"] == ["hate"]
    assert "lose" in wn["antonyms"]["win"]


@pytest.mark.parametrize("text,expected", [
    ("The film succeeds because it loved its characters.", "The film fails because it hated its characters."),
    ("Stocks rose as investors bought shares.", "Stocks fell as investors sold shares."),
    ("It isn't good.", "It is good."),
    ("It is good.", "It is not good."),
])
def test_swaps(text, expected):
    out, edits = probes.antonym_swap(text)
    assert out == expected and edits >= 1


def test_inflections_and_determinism():
    assert probes.inflect_verb("hate", "ing") == "hating" and probes.inflect_verb("go", "ed") == "went"
    assert probes.inflect_verb("carry", "s") == "carries" and probes.inflect_verb("fix", "s") == "fixes"
    text = "They celebrated the victory."                     # no antonym: a random verb, seeded
    assert probes.antonym_swap(text, seed=1) == probes.antonym_swap(text, seed=1)
    assert probes.antonym_swap(text, seed=1)[0] != text
    assert probes.antonym_swap("A red car.") == ("A red car.", 0)


def test_unchanged_share():
    flip = lambda texts: [("fail" in t or "hate" in t) for t in texts]   # noqa: E731  a verb-reading model
    blind = lambda texts: [len(t) > 10 for t in texts]                    # noqa: E731  a model ignoring verbs
    texts = ["The plan succeeds.", "We love it.", "A red car."]
    assert probes.unchanged_share(flip, texts)["unchanged"] == 0.0
    out = probes.unchanged_share(blind, texts)
    assert out["unchanged"] == 1.0 and out["edited"] == 2
