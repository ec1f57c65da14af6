"""Interpretability probe: antonym verb swap (thesis §4.5.2).

A model that understands a sentence should often change its answer when the sentence's verbs
are replaced by their antonyms ("the film succeeds" -> "the film fails") and its auxiliaries
negated ("is" -> "is not"). `antonym_swap(text)` makes that edit; `unchanged_share(predict,
texts)` measures how often a model's prediction stays the same (the thesis: 90.5% unchanged
for a QA model — it barely reads the verbs).

WordNet (Debian's `wordnet-base`: /usr/share/wordnet, or $WNHOME/dict) supplies the verb
antonyms (pointer '!' between verb senses), the verb vocabulary and the irregular forms
(verb.exc). There is no part-of-speech tagger offline, so a token counts as a verb when its
lemma is a WordNet verb and it is not also a noun or adjective — unless its form is verbal
(-ed / -ing / irregular past) or the word before it is a pronoun, "to" or an auxiliary, which
settles the ambiguity. Where a verb has no antonym, a
random WordNet verb is used (as in the thesis), in the original's inflection.
"""

from __future__ import annotations

import functools
import os
import re
import zlib
from pathlib import Path

import numpy as np

AUXILIARIES = {"is": "is not", "are": "are not", "was": "was not", "were": "were not", "am": "am not",
               "do": "do not", "does": "does not", "did": "did not", "can": "cannot", "could": "could not",
               "will": "will not", "would": "would not", "should": "should not", "has": "has not",
               "have": "have not", "had": "had not", "must": "must not", "may": "may not", "might": "might not"}
NEGATED = {"isn't": "is", "aren't": "are", "wasn't": "was", "weren't": "were", "don't": "do", "doesn't": "does",
           "didn't": "did", "can't": "can", "cannot": "can", "couldn't": "could", "won't": "will",
           "wouldn't": "would", "shouldn't": "should", "hasn't": "has", "haven't": "have", "hadn't": "had"}
_TOKEN = re.compile(r"[A-Za-z']+|[^A-Za-z'\s]+|\s+")


def wordnet_dir() -> Path:
    for candidate in (os.environ.get("WNHOME") and Path(os.environ["WNHOME"]) / "dict", Path("/usr/share/wordnet")):
        if candidate and (candidate / "data.verb").exists():
            return candidate
    raise FileNotFoundError("WordNet data files not found: install Debian's wordnet-base (apt-get install "
                            "wordnet-base) or set WNHOME")


@functools.lru_cache(maxsize=1)
def wordnet() -> dict:
    """verbs (set), nouns_adjs (set), antonyms (lemma -> sorted lemmas), irregular (form -> lemma),
    past (lemma -> irregular past form)."""
    d = wordnet_dir()

    def index(pos):
        """lemma -> tagsense_cnt (how many of its senses were seen in the tagged corpus: a frequency proxy)."""
        out = {}
        for line in (d / f"index.{pos}").read_text(errors="replace").splitlines():
            if line and not line.startswith(" "):
                fields = line.split()
                out[fields[0]] = int(fields[3 + int(fields[3]) + 2]) if len(fields) > 6 else 0
        return out
    verb_counts = index("verb")
    noun_adj_counts = {**index("adj"), **{k: v for k, v in index("noun").items()}}
    verbs, nouns_adjs = set(verb_counts), set(noun_adj_counts)
    synsets, links = {}, {}
    for line in (d / "data.verb").read_text(errors="replace").splitlines():
        if not line or line.startswith(" "):
            continue
        fields = line.split(" | ", 1)[0].split()
        offset, n_words = fields[0], int(fields[3], 16)
        synsets[offset] = [fields[4 + 2 * i].lower() for i in range(n_words)]
        p = 4 + 2 * n_words
        for k in range(int(fields[p])):
            symbol, target, pos, src_tgt = fields[p + 1 + 4 * k: p + 5 + 4 * k]
            if symbol == "!" and pos == "v":
                links.setdefault(offset, []).append((int(src_tgt[:2], 16), target, int(src_tgt[2:], 16)))
    antonyms: dict[str, list] = {}
    # index.verb lists a lemma's synsets most frequent sense first: the first sense with an antonym wins
    for line in (d / "index.verb").read_text(errors="replace").splitlines():
        if not line or line.startswith(" "):
            continue
        fields = line.split()
        lemma, n_synsets = fields[0], int(fields[2])
        for offset in fields[-n_synsets:]:
            words = synsets.get(offset, [])
            found = []
            for src, target, tgt in links.get(offset, []):
                if src == 0 or (src <= len(words) and words[src - 1] == lemma):
                    goals = synsets.get(target, [])
                    found += goals if tgt == 0 else goals[tgt - 1:tgt]
            found = [g for g in dict.fromkeys(found) if "_" not in g and g != lemma]
            if found:
                antonyms[lemma] = found
                break
    irregular, past, ing = {}, {}, {}
    for line in (d / "verb.exc").read_text(errors="replace").splitlines():
        parts = line.split()
        if len(parts) >= 2:
            irregular[parts[0]] = parts[1]
            if parts[0].endswith("ing"):
                ing.setdefault(parts[1], parts[0])
            elif not parts[0].endswith("s"):
                past.setdefault(parts[1], []).append(parts[0])
    # past tense rather than participle: not the one in -n / -ne (fell, went; not fallen, gone), then the shorter
    past = {k: min(v, key=lambda f: (f.endswith(("n", "ne")), len(f))) for k, v in past.items()}
    return {"verbs": verbs, "nouns_adjs": nouns_adjs, "verb_counts": verb_counts,
            "noun_adj_counts": noun_adj_counts, "antonyms": antonyms,
            "irregular": irregular, "past": past, "ing": ing, "simple_verbs": sorted(v for v in verbs if v.isalpha())}


DETERMINERS = {"the", "a", "an", "this", "that", "these", "those", "his", "her", "its", "their", "our", "my",
               "your", "every", "each", "some", "any", "no"}
VERB_CONTEXT = {"i", "we", "you", "they", "he", "she", "it", "to", "will", "would", "can", "could", "shall",
                "should", "may", "might", "must", "do", "does", "did", "not", "never", "don't", "doesn't",
                "didn't", "won't", "can't", "cannot"}


def lemma_and_form(token: str, previous: str = "") -> tuple[str | None, str]:
    """(WordNet verb lemma or None, form in {'base', 's', 'ed', 'ing'}) of a lower-case token;
    `previous` (the word before, lower case) resolves noun / verb ambiguity ("we love")."""
    wn = wordnet()
    if previous in DETERMINERS:                           # "the ending", "a walk": nouns
        return None, "base"
    verbal_context = previous in VERB_CONTEXT
    if token in wn["irregular"] and wn["irregular"][token] != token:
        lemma = wn["irregular"][token]
        # "rose": the verb rise is far more frequent than the noun rose, "saw" likewise
        if verbal_context or wn["verb_counts"].get(lemma, 0) >= wn["noun_adj_counts"].get(token, -1):
            return lemma, "ing" if token.endswith("ing") else "ed"
    candidates = [(token, "base")]

    def cvc(stem):       # hat-ed comes from hate (hat would double: hatted)
        return len(stem) >= 3 and stem[-1] not in "aeiouwxy" and stem[-2] in "aeiou" and stem[-3] not in "aeiou"
    for suffix in ("ing", "ed"):
        if token.endswith(suffix):
            stem = token[:-len(suffix)]
            e_first = cvc(stem) and stem + "e" in wn["verbs"]
            candidates += [(stem + "e", suffix), (stem, suffix)] if e_first or suffix == "ed" and stem.endswith("e") \
                else [(stem, suffix), (stem + "e", suffix)]
            if suffix == "ed" and token.endswith("ied"):
                candidates.append((token[:-3] + "y", "ed"))
            if len(stem) > 2 and stem[-1] == stem[-2]:
                candidates.append((stem[:-1], suffix))
    if token.endswith("s"):
        candidates += [(token[:-1], "s")]
        if token.endswith("es"):
            candidates.append((token[:-2], "s"))
        if token.endswith("ies"):
            candidates.append((token[:-3] + "y", "s"))
    for lemma, form in candidates:
        if lemma in wn["verbs"]:
            # base / -s forms that are also nouns or adjectives are too ambiguous without a tagger
            if form in ("base", "s") and not verbal_context and \
                    (lemma in wn["nouns_adjs"] or token in wn["nouns_adjs"]):
                return None, form
            return lemma, form
    return None, "base"


def inflect_verb(lemma: str, form: str) -> str:
    if form == "base":
        return lemma
    if form == "s":
        return lemma + ("es" if lemma.endswith(("s", "sh", "ch", "x", "z", "o")) else
                        "s" if not (lemma.endswith("y") and lemma[-2:-1] not in "aeiou") else "") \
            if not (lemma.endswith("y") and lemma[-2:-1] not in "aeiou") else lemma[:-1] + "ies"
    if form == "ed":
        past = wordnet()["past"].get(lemma)
        if past:
            return past
        if lemma.endswith("e"):
            return lemma + "d"
        if lemma.endswith("y") and lemma[-2:-1] not in "aeiou":
            return lemma[:-1] + "ied"
        return lemma + "ed"
    if lemma in wordnet()["ing"]:
        return wordnet()["ing"][lemma]                     # beginning, lying, ...
    stem = lemma[:-1] if lemma.endswith("e") and not lemma.endswith("ee") else lemma
    return stem + "ing"


def _case(template: str, word: str) -> str:
    return word[:1].upper() + word[1:] if template[:1].isupper() else word


def antonym_swap(text: str, seed: int = 0) -> tuple[str, int]:
    """(edited text, number of edits): verbs -> antonyms (else a random verb), auxiliaries negated,
    negated auxiliaries made positive."""
    wn = wordnet()
    rng = np.random.default_rng([seed, zlib.crc32(text.encode("utf-8"))])
    out, edits = [], 0
    tokens = _TOKEN.findall(text)
    for i, tok in enumerate(tokens):
        low = tok.lower()
        if low in NEGATED:
            out.append(_case(tok, NEGATED[low]))
            edits += 1
            continue
        if low in AUXILIARIES:
            nxt = next((t.lower() for t in tokens[i + 1:] if not t.isspace()), "")
            if nxt in ("not", "n't", "never"):
                out.append(tok)
            else:
                out.append(_case(tok, AUXILIARIES[low]))
                edits += 1
            continue
        if not tok[:1].isalpha() or len(low) < 3:
            out.append(tok)
            continue
        previous = next((t.lower() for t in reversed(tokens[:i]) if not t.isspace()), "")
        lemma, form = lemma_and_form(low, previous)
        if lemma is None:
            out.append(tok)
            continue
        options = wn["antonyms"].get(lemma)
        new = options[rng.integers(len(options))] if options else \
            wn["simple_verbs"][rng.integers(len(wn["simple_verbs"]))]
        out.append(_case(tok, inflect_verb(new, form)))
        edits += 1
    return "".join(out), edits


def unchanged_share(predict, texts, seed: int = 0) -> dict:
    """How often `predict(texts) -> labels` gives the same label after `antonym_swap`.
    Texts the swap leaves unchanged are not counted."""
    swapped = [antonym_swap(t, seed) for t in texts]
    keep = [i for i, (s, n) in enumerate(swapped) if n > 0 and s != texts[i]]
    before = np.asarray(predict([texts[i] for i in keep]))
    after = np.asarray(predict([swapped[i][0] for i in keep]))
    same = before == after
    return {"texts": len(texts), "edited": len(keep), "unchanged": float(same.mean()) if keep else float("nan"),
            "edits_per_text": float(np.mean([swapped[i][1] for i in keep])) if keep else 0.0,
            "examples": [(texts[i], swapped[i][0], bool(s)) for i, s in zip(keep[:5], same[:5])]}
