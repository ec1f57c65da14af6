"""Natural text corruptions: the eleven aspects of WildNLP (Rychalska et al., ICONIP 2019).

Each aspect is a small callable `aspect(text) -> text` with a severity and a seed:

- severity: an int n >= 0 corrupts n eligible units per text (words, spaces, marks; fewer if
  the text has fewer), a float in (0, 1) that share of them (rounded, at least one when any
  exists); 0 is the identity.
- seed: every text gets its own generator, derived from (seed, the aspect, the text's
  bytes) — no global RNG is touched, the result does not depend on call order or on
  other texts, and the same seed always gives the same output.

Aspects change only what they are about: words keep their surrounding punctuation and
whitespace, capitalisation of replaced words is carried over, and a text with no
eligible unit comes back unchanged. Compose them with `Compose([...])` or `a | b`.

The word lists (misspellings, homophones, keyboard neighbours, Hu & Liu's opinion
lexicon) are WildNLP's own files, shipped as package data in `resources/` (origin, licence
and checksums in its README): a runtime part of the library, not a dataset to stage, so the
aspects work on a fresh install. They are byte-identical to the registry's `wildnlp-resources`.
"""

from __future__ import annotations

import functools
import json
import re
import zlib
from importlib.resources import files

import numpy as np

_SPLIT = re.compile(r"(\s+)")
_CORE = re.compile(r"^(\W*)(.*?)(\W*)$", re.S)
_NUMBER = re.compile(r"^[-+]?(\d{1,3}(,\d{3})+|\d+)(\.\d+)?$")
ARTICLES = ("a", "an", "the")
MARKS = ".,!?;:"
RESOURCES = files("sketchrec.robustness") / "resources"


def _lexicon(name: str) -> frozenset:
    """Hu & Liu's word list, read as the registry's loader reads it (Latin-1, ';' header lines dropped)."""
    lines = (RESOURCES / name).read_text(encoding="latin-1").splitlines()
    return frozenset(w.strip().lower() for w in lines if w.strip() and not w.startswith(";"))


@functools.lru_cache(maxsize=1)
def resources() -> dict:
    """The WildNLP word lists: misspellings, homophones, qwerty (dicts), positive, negative (sets)."""
    table = {key: json.loads((RESOURCES / f"{key}.json").read_text(encoding="utf-8"))
             for key in ("misspellings", "homophones", "qwerty")}
    return {**table, "positive": _lexicon("positive_words.txt"), "negative": _lexicon("negative_words.txt")}


def _match_case(template: str, word: str) -> str:
    if template.isupper() and len(template) > 1:
        return word.upper()
    if template[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


class Aspect:
    """Base class: subclasses define `eligible(pieces)` -> indices of corruptible pieces and
    `corrupt(piece, rng)` -> new piece (or override `apply`)."""

    name = "aspect"

    def __init__(self, severity: float = 1, seed: int = 0):
        if severity < 0:
            raise ValueError(f"severity must be >= 0, got {severity}")
        if isinstance(severity, float) and not float(severity).is_integer() and severity >= 1:
            raise ValueError(f"a fractional severity is a share in (0, 1), got {severity}")
        self.severity, self.seed = severity, seed

    def __repr__(self) -> str:
        return f"{type(self).__name__}(severity={self.severity}, seed={self.seed})"

    def __or__(self, other: "Aspect") -> "Compose":
        return Compose([self, other])

    def rng(self, text: str) -> np.random.Generator:
        return np.random.default_rng([self.seed, zlib.crc32(self.name.encode()), zlib.crc32(text.encode("utf-8"))])

    def count(self, n_eligible: int) -> int:
        if n_eligible == 0 or self.severity == 0:
            return 0
        if 0 < self.severity < 1:
            return max(1, int(round(self.severity * n_eligible)))
        return min(int(self.severity), n_eligible)

    def __call__(self, text: str) -> str:
        if text is None or self.severity == 0 or not text:
            return text
        return self.apply(text, self.rng(text))

    def apply(self, text: str, rng: np.random.Generator) -> str:
        pieces = _SPLIT.split(text)                          # words at even positions, whitespace at odd
        words = pieces[0::2]
        eligible = [i for i, w in enumerate(words) if w and self.eligible_word(w)]
        n = self.count(len(eligible))
        if n == 0:
            return text
        for i in rng.choice(eligible, n, replace=False):
            lead, core, trail = _CORE.match(words[i]).groups()
            words[i] = lead + self.corrupt(core, rng) + trail
        pieces[0::2] = words
        return "".join(pieces)

    # word-level aspects implement these two
    def eligible_word(self, word: str) -> bool:
        raise NotImplementedError

    def corrupt(self, core: str, rng: np.random.Generator) -> str:
        raise NotImplementedError

    def apply_many(self, texts) -> list:
        return [self(t) for t in texts]


def _core(word: str) -> str:
    return _CORE.match(word).group(2)


class Article(Aspect):
    """Removes an article or swaps it for a wrong one (a / an / the)."""
    name = "article"

    def eligible_word(self, word):
        return _core(word).lower() in ARTICLES

    def apply(self, text, rng):
        pieces = _SPLIT.split(text)
        words = pieces[0::2]
        eligible = [i for i, w in enumerate(words) if w and self.eligible_word(w)]
        n = self.count(len(eligible))
        if n == 0:
            return text
        drop = set()
        for i in rng.choice(eligible, n, replace=False):
            lead, core, trail = _CORE.match(words[i]).groups()
            if rng.random() < 0.5 and not lead and not trail:
                drop.add(int(i))                              # removed with the whitespace after it
            else:
                wrong = [a for a in ARTICLES if a != core.lower()]
                words[i] = lead + _match_case(core, wrong[rng.integers(len(wrong))]) + trail
        pieces[0::2] = words
        out = []
        for j, piece in enumerate(pieces):
            if j % 2 == 0 and j // 2 in drop:
                continue
            if j % 2 == 1 and (j - 1) // 2 in drop:
                continue
            out.append(piece)
        return "".join(out).rstrip() if drop and (len(words) - 1) in drop else "".join(out)


class Swap(Aspect):
    """Swaps two neighbouring, different letters inside a word."""
    name = "swap"

    def eligible_word(self, word):
        core = _core(word)
        return any(core[j] != core[j + 1] and core[j].isalpha() and core[j + 1].isalpha()
                   for j in range(len(core) - 1))

    def corrupt(self, core, rng):
        spots = [j for j in range(len(core) - 1)
                 if core[j] != core[j + 1] and core[j].isalpha() and core[j + 1].isalpha()]
        j = spots[rng.integers(len(spots))]
        return core[:j] + core[j + 1] + core[j] + core[j + 2:]


class Qwerty(Aspect):
    """Replaces one letter with a neighbouring key of a QWERTY keyboard (case kept)."""
    name = "qwerty"

    def __init__(self, severity=1, seed=0, keyboard: dict | None = None):
        super().__init__(severity, seed)
        self.keyboard = keyboard

    @property
    def keys(self) -> dict:
        return self.keyboard if self.keyboard is not None else resources()["qwerty"]

    def eligible_word(self, word):
        return any(c.lower() in self.keys for c in _core(word))

    def corrupt(self, core, rng):
        spots = [j for j, c in enumerate(core) if c.lower() in self.keys]
        j = spots[rng.integers(len(spots))]
        near = self.keys[core[j].lower()]
        new = near[rng.integers(len(near))]
        return core[:j] + (new.upper() if core[j].isupper() else new) + core[j + 1:]


class RemoveChar(Aspect):
    """Removes one character from a word of two or more characters."""
    name = "remove_char"

    def eligible_word(self, word):
        return len(_core(word)) >= 2

    def corrupt(self, core, rng):
        j = rng.integers(len(core))
        return core[:j] + core[j + 1:]


class RemoveSpace(Aspect):
    """Removes the whitespace between two words (joining them)."""
    name = "remove_space"

    def apply(self, text, rng):
        pieces = _SPLIT.split(text)
        gaps = [j for j in range(1, len(pieces) - 1, 2) if pieces[j - 1] and pieces[j + 1]]
        n = self.count(len(gaps))
        if n == 0:
            return text
        for j in rng.choice(gaps, n, replace=False):
            pieces[j] = ""
        return "".join(pieces)


class _Lookup(Aspect):
    """Replaces a listed word with one of its listed variants."""
    table_name = ""

    def __init__(self, severity=1, seed=0, table: dict | None = None):
        super().__init__(severity, seed)
        self.table = table

    @property
    def lookup(self) -> dict:
        return self.table if self.table is not None else resources()[self.table_name]

    def eligible_word(self, word):
        return _core(word).lower() in self.lookup

    def corrupt(self, core, rng):
        options = self.lookup[core.lower()]
        return _match_case(core, options[rng.integers(len(options))])


class Misspelling(_Lookup):
    """Commonly misspelled English words (Wikipedia's list) -> a listed misspelling."""
    name, table_name = "misspelling", "misspellings"


class Homophones(_Lookup):
    """Words -> one of their homophones (accept -> except)."""
    name, table_name = "homophones", "homophones"


class Digits2Words(Aspect):
    """Numbers written in digits -> words (3.5 -> three point five), via `inflect`."""
    name = "digits2words"

    def eligible_word(self, word):
        return bool(_NUMBER.match(_core(word)))

    def corrupt(self, core, rng):
        import inflect
        return _engine(inflect).number_to_words(core)


@functools.lru_cache(maxsize=1)
def _engine(inflect):
    return inflect.engine()


class _SentimentMask(Aspect):
    """Masks one character of an opinion word with '*' (WildNLP's SentimentMasking)."""
    lexicon = ""

    def __init__(self, severity=1, seed=0, words: frozenset | None = None, mask: str = "*"):
        super().__init__(severity, seed)
        self.words, self.mask = words, mask

    @property
    def vocabulary(self):
        return self.words if self.words is not None else resources()[self.lexicon]

    def eligible_word(self, word):
        return _core(word).lower() in self.vocabulary

    def corrupt(self, core, rng):
        j = rng.integers(len(core))
        return core[:j] + self.mask + core[j + 1:]


class Negatives(_SentimentMask):
    """Masks a character in negative words (Hu & Liu's lexicon)."""
    name, lexicon = "negatives", "negative"


class Positives(_SentimentMask):
    """Masks a character in positive words (Hu & Liu's lexicon)."""
    name, lexicon = "positives", "positive"


class Marks(Aspect):
    """Adds a punctuation mark after a word or removes an existing one (each unit: either, 50/50,
    removal only where a mark exists)."""
    name = "marks"

    def apply(self, text, rng):
        pieces = _SPLIT.split(text)
        words = [i for i in range(0, len(pieces), 2) if pieces[i]]
        n = self.count(len(words))
        if n == 0:
            return text
        for i in rng.choice(words, n, replace=False):
            word = pieces[i]
            marks = [j for j, c in enumerate(word) if c in MARKS]
            if marks and rng.random() < 0.5:
                j = marks[rng.integers(len(marks))]
                pieces[i] = word[:j] + word[j + 1:]
            else:
                pieces[i] = word + MARKS[rng.integers(len(MARKS))]
        return "".join(pieces)


class Compose(Aspect):
    """Applies aspects in order."""
    name = "compose"

    def __init__(self, aspects):
        super().__init__(1, 0)
        self.aspects = list(aspects)

    def __repr__(self) -> str:
        return " | ".join(map(repr, self.aspects))

    def __or__(self, other):
        return Compose([*self.aspects, other])

    def __call__(self, text):
        for aspect in self.aspects:
            text = aspect(text)
        return text


ASPECTS = {cls.name: cls for cls in (Article, Swap, Qwerty, RemoveChar, RemoveSpace, Misspelling, Digits2Words,
                                     Homophones, Negatives, Positives, Marks)}


def make(name: str, severity: float = 1, seed: int = 0) -> Aspect:
    """An aspect by name (article, swap, qwerty, remove_char, remove_space, misspelling, digits2words,
    homophones, negatives, positives, marks)."""
    key = name.lower().replace("-", "_")
    if key not in ASPECTS:
        raise ValueError(f"unknown aspect {name!r}; choose from {', '.join(ASPECTS)}")
    return ASPECTS[key](severity, seed)
