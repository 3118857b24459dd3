import pytest
import torch

from bgetune.vocab import expand_vocabulary, missing_characters, unk_rate


def test_missing_characters_are_found_most_frequent_first(tiny_model):
    texts = ["的猫猫猫狗狗", "鱼"]
    assert missing_characters(tiny_model.tokenizer, texts) == ["猫", "狗", "鱼"]
    assert missing_characters(tiny_model.tokenizer, texts, min_count=2) == ["猫", "狗"]


def test_expansion_keeps_old_rows_and_initialises_new_ones(tiny_model):
    embeddings = tiny_model[0].auto_model.get_input_embeddings().weight
    old = embeddings.detach().clone()
    texts = ["猫吃鱼", "狗"]
    assert unk_rate(tiny_model.tokenizer, texts) == 1.0
    report = expand_vocabulary(tiny_model, ["猫", "吃", "鱼", "狗", "猫狗"], init_noise=0.0, seed=0)
    assert report["tokens_added"] == 5 and report["vocab_size_after"] == old.shape[0] + 5
    new = tiny_model[0].auto_model.get_input_embeddings().weight.detach()
    assert torch.equal(new[: old.shape[0]], old)
    cat = tiny_model.tokenizer.convert_tokens_to_ids("猫")
    assert torch.allclose(new[cat], old.mean(dim=0), atol=1e-6)   # was [UNK]: mean of all rows, no noise
    assert unk_rate(tiny_model.tokenizer, texts) == 0.0
    assert tiny_model.tokenizer.tokenize("猫吃鱼") == ["猫", "吃", "鱼"]


def test_term_row_is_mean_of_its_old_pieces_and_noise_is_seeded(tiny_model_dir):
    from bgetune.models import load_model

    model = load_model(str(tiny_model_dir))
    old = model[0].auto_model.get_input_embeddings().weight.detach().clone()
    tok = model.tokenizer
    pieces = tok("catdog", add_special_tokens=False)["input_ids"]
    expand_vocabulary(model, ["catdog", "猫"], init_noise=0.1, seed=3)
    weight = model[0].auto_model.get_input_embeddings().weight.detach()
    assert torch.allclose(weight[tok.convert_tokens_to_ids("catdog")], old[pieces].mean(dim=0), atol=1e-6)
    again = load_model(str(tiny_model_dir))
    expand_vocabulary(again, ["catdog", "猫"], init_noise=0.1, seed=3)
    assert torch.equal(again[0].auto_model.get_input_embeddings().weight, weight)


def test_default_noise_draws_new_rows_with_the_spread_of_the_old_ones(tiny_model):
    old = tiny_model[0].auto_model.get_input_embeddings().weight.detach().clone()
    characters = [chr(0x4E00 + i) for i in range(400)]
    expand_vocabulary(tiny_model, characters, seed=0)   # default init_noise
    new = tiny_model[0].auto_model.get_input_embeddings().weight.detach()[old.shape[0]:]
    ratio = new.std(dim=0) / old.std(dim=0)
    # Distinct characters must start as far apart as known tokens, not as near-copies of the mean row.
    assert 0.8 < ratio.median().item() < 1.2
    assert torch.allclose(new.mean(dim=0), old.mean(dim=0), atol=3 * old.std(dim=0).max().item() / 20)


def _topic_corpus(seed: int = 0) -> tuple[list[str], list[str], list[str]]:
    """Sentences in which 20 'animal' characters share one set of context characters and 20 'plant' characters
    another: a co-occurrence start must put each group's members near each other."""
    import random

    rng = random.Random(seed)
    animals = [chr(0x4E00 + i) for i in range(20)]
    plants = [chr(0x4E40 + i) for i in range(20)]
    animal_context = [chr(0x4E80 + i) for i in range(15)]
    plant_context = [chr(0x4EC0 + i) for i in range(15)]
    texts = []
    for _ in range(400):
        for nouns, context in ((animals, animal_context), (plants, plant_context)):
            words = rng.sample(context, 4)
            words.insert(2, rng.choice(nouns))
            texts.append("".join(words))
    return texts, animals, plants


def _centred(model, tokens, old):
    weight = model[0].auto_model.get_input_embeddings().weight.detach()
    rows = weight[[model.tokenizer.convert_tokens_to_ids(t) for t in tokens]]
    return torch.nn.functional.normalize((rows - old.mean(dim=0)) / old.std(dim=0), dim=1)


def test_cooccurrence_init_puts_tokens_of_similar_contexts_near_each_other(tiny_model):
    from bgetune.vocab import cooccurrence_init

    texts, animals, plants = _topic_corpus()
    old = tiny_model[0].auto_model.get_input_embeddings().weight.detach().clone()
    unused = chr(0x9F00)   # added but never in the corpus: keeps its noise row
    new = missing_characters(tiny_model.tokenizer, texts)   # 68 of the 70: the tiny vocab knows 一 and 了
    expand_vocabulary(tiny_model, new + [unused], seed=0)
    noise_row = tiny_model[0].auto_model.get_input_embeddings().weight.detach()[-1].clone()
    report = cooccurrence_init(tiny_model, texts, old_vocab_size=old.shape[0], window=2, seed=0)
    assert len(new) == 68 and report == {"rows_from_cooccurrence": 68, "rows_kept": 1, "svd_dimensions": 32}
    weight = tiny_model[0].auto_model.get_input_embeddings().weight.detach()
    assert torch.equal(weight[: old.shape[0]], old) and torch.equal(weight[-1], noise_row)
    a, p = _centred(tiny_model, animals, old), _centred(tiny_model, plants, old)
    within = ((a @ a.T).sum() - len(animals)) / (len(animals) ** 2 - len(animals))
    across = (a @ p.T).mean()
    assert within.item() > across.item() + 0.3, (within.item(), across.item())
    # The random start's spread on average over the dimensions (the SVD's strong dimensions get more of it).
    new = weight[old.shape[0]:-1]
    variance_ratio = (new.var(dim=0) / old.var(dim=0)).mean().item()
    assert 0.9 < variance_ratio < 1.1, variance_ratio


def test_cooccurrence_init_is_deterministic_and_noise_init_has_no_such_structure(tiny_model_dir):
    from bgetune.models import load_model
    from bgetune.vocab import cooccurrence_init

    texts, animals, plants = _topic_corpus()
    rows = []
    for _ in range(2):
        model = load_model(str(tiny_model_dir))
        old_size = len(model.tokenizer)
        expand_vocabulary(model, missing_characters(model.tokenizer, texts), seed=0)
        cooccurrence_init(model, texts, old_size, window=2, seed=0)
        rows.append(model[0].auto_model.get_input_embeddings().weight.detach().clone())
    assert torch.equal(rows[0], rows[1])
    noise_only = load_model(str(tiny_model_dir))
    old = noise_only[0].auto_model.get_input_embeddings().weight.detach().clone()
    expand_vocabulary(noise_only, missing_characters(noise_only.tokenizer, texts), seed=0)
    a, p = _centred(noise_only, animals, old), _centred(noise_only, plants, old)
    within = ((a @ a.T).sum() - len(animals)) / (len(animals) ** 2 - len(animals))
    assert abs(within.item() - (a @ p.T).mean().item()) < 0.1


DICTIONARY = """# CC-CEDICT-format lines: TRAD SIMP [pinyin] /gloss/.../
貓 猫 [mao1] /cat/(slang) a kitty/
狗 狗 [gou3] /surname Gou/dog/
魚 鱼 [yu2] /fish/CL:條|条[tiao2]/red/
紅 红 [hong2] /red/
了 了 [le5] /(completed action marker)/
"""


def test_english_senses_keep_everyday_meanings_as_plain_words():
    from bgetune.vocab import english_senses

    glosses = ["to catch cold", "(common) cold", "CL:場|场[chang2],次[ci4]", "(coll.) to be interested in",
               "(Tw) to detest", "see 感到[gan3 dao4]", "variant of 冒[mao4]"]
    assert english_senses(glosses) == ["catch cold", "cold"]
    assert english_senses(["(completed action marker)"]) == ["completed action marker"]
    assert english_senses(["head", "hair style", "the top", "end"], max_senses=2) == ["head", "hair style"]
    assert english_senses(["surname Wang"]) == []


def test_dictionary_init_points_each_new_row_at_its_english_senses(tiny_model, tmp_path):
    from bgetune.vocab import dictionary_init, read_dictionary

    path = tmp_path / "cedict.txt"
    path.write_text(DICTIONARY, encoding="utf-8")
    glosses = read_dictionary(str(path))
    assert glosses["貓"] == glosses["猫"] == ["cat", "(slang) a kitty"]   # traditional and simplified headwords
    tok = tiny_model.tokenizer
    old = tiny_model[0].auto_model.get_input_embeddings().weight.detach().clone()
    expand_vocabulary(tiny_model, ["猫", "狗", "鱼", "红", "鸟", "红猫"], init_noise=1.0, seed=0)
    bird_row = tiny_model[0].auto_model.get_input_embeddings().weight.detach()[tok.convert_tokens_to_ids("鸟")].clone()
    report = dictionary_init(tiny_model, glosses, old_vocab_size=old.shape[0], max_senses=3, scale=1.0)
    # 猫 狗 鱼 红 from their own entries; 红猫 (no entry) from 红 + 猫; 鸟 (no entry, one character) kept.
    assert report == {"rows_from_entry": 4, "rows_from_parts": 1, "rows_kept": 1}
    weight = tiny_model[0].auto_model.get_input_embeddings().weight.detach()
    assert torch.equal(weight[: old.shape[0]], old)
    assert torch.equal(weight[tok.convert_tokens_to_ids("鸟")], bird_row)
    mean = old.mean(dim=0)
    radius = (old - mean).norm(dim=1).mean()

    def row(token):
        return weight[tok.convert_tokens_to_ids(token)]

    def expected(vector):   # the old rows' mean plus the average distance, towards the meaning
        return mean + radius * torch.nn.functional.normalize(vector - mean, dim=0)

    word = {w: old[tok.convert_tokens_to_ids(w)] for w in ("cat", "dog", "fish", "red")}
    assert torch.allclose(row("猫"), expected(word["cat"]), atol=1e-5)     # the slang sense is not used
    assert torch.allclose(row("狗"), expected(word["dog"]), atol=1e-5)     # "surname Gou" is not a meaning
    assert torch.allclose(row("鱼"), expected((word["fish"] + 0.5 * word["red"]) / 1.5), atol=1e-5)   # 2nd sense ½
    assert torch.allclose(row("红猫"), expected((word["red"] + word["cat"]) / 2), atol=1e-5)
    assert not torch.allclose(row("猫"), row("狗"), atol=1e-3)


def test_a_dictionary_line_in_another_format_is_named(tmp_path):
    from bgetune.records import InputError
    from bgetune.vocab import read_dictionary, resolve_dictionary_path

    path = tmp_path / "words.txt"
    path.write_text(DICTIONARY + "猫 cat\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"words.txt: line 7: not a CC-CEDICT entry"):
        read_dictionary(str(path))
    with pytest.raises(ValueError, match="unknown bundled dictionary 'nope'"):
        resolve_dictionary_path("bundled:nope")
    assert resolve_dictionary_path("data/mine.txt") == "data/mine.txt"


def test_bundled_cc_cedict_gives_medical_words_their_english_meaning():
    from bgetune.vocab import english_senses, read_dictionary, resolve_dictionary_path

    glosses = read_dictionary(resolve_dictionary_path("bundled:cc-cedict"))
    assert len(glosses) > 100_000
    assert english_senses(glosses["高血压"]) == ["high blood pressure", "hypertension"]
    assert english_senses(glosses["肝"])[0] == "liver" and english_senses(glosses["咳嗽"]) == ["cough"]


# The tiny base knows 的 是 在 了 一 (conftest.BASE_CHARS); here 的 and 是 have (made-up) entries, 在 none.
KNOWN_DICTIONARY = DICTIONARY + "的 的 [de5] /red/\n是 是 [shi4] /dog/blue/\n"


def test_known_characters_are_the_corpus_han_characters_the_base_already_has(tiny_model):
    from bgetune.vocab import known_characters

    texts = ["的猫是 a1", "在的。", "的"]    # 猫: not in the base; a, 1, 。: not Han
    assert known_characters(tiny_model.tokenizer, texts) == ["的", "在", "是"]   # 的 ×3, then by code point
    assert known_characters(tiny_model.tokenizer, texts, min_count=2) == ["的"]


def test_dictionary_init_restarts_the_known_rows_it_is_given_and_nothing_else(tiny_model_dir, tmp_path):
    from bgetune.models import load_model
    from bgetune.vocab import dictionary_init, read_dictionary

    path = tmp_path / "cedict.txt"
    path.write_text(KNOWN_DICTIONARY, encoding="utf-8")
    glosses = read_dictionary(str(path))
    plain, restarted = (load_model(str(tiny_model_dir), query_max_length=32, passage_max_length=64) for _ in "ab")
    tok = plain.tokenizer
    old = plain[0].auto_model.get_input_embeddings().weight.detach().clone()
    for model in (plain, restarted):
        expand_vocabulary(model, ["猫", "狗", "红猫"], init_noise=1.0, seed=0)
    known = tok.convert_tokens_to_ids(["的", "是", "在"])
    plain_report = dictionary_init(plain, glosses, old_vocab_size=old.shape[0])
    report = dictionary_init(restarted, glosses, old_vocab_size=old.shape[0], known_rows=known)
    assert report == {**plain_report, "known_rows_from_entry": 2, "known_rows_kept": 1}   # 在 has no entry
    weight = restarted[0].auto_model.get_input_embeddings().weight.detach()
    mean = old.mean(dim=0)
    radius = (old - mean).norm(dim=1).mean()

    def expected(vector):   # as the new rows: the old rows' mean plus their average distance, towards the meaning
        return mean + radius * torch.nn.functional.normalize(vector - mean, dim=0)

    word = {w: old[tok.convert_tokens_to_ids(w)] for w in ("red", "dog", "blue")}
    assert torch.allclose(weight[known[0]], expected(word["red"]), atol=1e-5)
    assert torch.allclose(weight[known[1]], expected((word["dog"] + 0.5 * word["blue"]) / 1.5), atol=1e-5)
    assert not torch.allclose(weight[known[0]], old[known[0]], atol=1e-3)
    untouched = [i for i in range(old.shape[0]) if i not in known[:2]]
    assert torch.equal(weight[untouched], old[untouched])            # 在 and every other old row as they were
    plain_weight = plain[0].auto_model.get_input_embeddings().weight.detach()
    assert torch.equal(weight[old.shape[0]:], plain_weight[old.shape[0]:])   # the new rows as without known rows
    with pytest.raises(ValueError, match="below old_vocab_size"):
        dictionary_init(restarted, glosses, old_vocab_size=old.shape[0], known_rows=[old.shape[0]])


@pytest.mark.parametrize("restart", [False, True])
def test_the_vocab_params_restart_only_the_corpus_characters_when_asked(tiny_model_dir, tmp_path, restart):
    from bgetune.models import expand_for_corpus, load_model
    from bgetune.params import VocabParams

    path = tmp_path / "cedict.txt"
    path.write_text(KNOWN_DICTIONARY, encoding="utf-8")
    model = load_model(str(tiny_model_dir), query_max_length=32, passage_max_length=64)
    old = model[0].auto_model.get_input_embeddings().weight.detach().clone()
    report = expand_for_corpus(model, ["是猫", "是狗的"], VocabParams(dictionary=str(path),
                                                                   init_known_characters=restart), seed=0)
    weight = model[0].auto_model.get_input_embeddings().weight.detach()[: old.shape[0]]
    changed = {model.tokenizer.convert_ids_to_tokens(i) for i in range(old.shape[0])
               if not torch.equal(weight[i], old[i])}
    assert report["characters_added"] == 2
    if restart:   # 的 and 是 are in the corpus and the dictionary; 在, 了 and 一 (not in the corpus) kept
        assert changed == {"的", "是"}
        assert (report["init"]["known_rows_from_entry"], report["init"]["known_rows_kept"]) == (2, 0)
    else:
        assert changed == set() and "known_rows_from_entry" not in report["init"]


def test_domain_terms_skip_words_the_tokenizer_already_reads_as_one_token(tiny_model, tmp_path):
    from transformers import AutoTokenizer

    from bgetune.vocab import domain_terms, reads_as_one_token
    from conftest import build_tiny_xlmr

    bert = tiny_model.tokenizer                   # uncased WordPiece: each Han character is a token of its own
    assert reads_as_one_token(bert, "banana") and reads_as_one_token(bert, "Banana")   # "Banana" reads "banana"
    assert not reads_as_one_token(bert, "bananas") and not reads_as_one_token(bert, "血压")
    folder = build_tiny_xlmr(tmp_path / "tiny-bge-m3", pieces=["血压", "▁心脏"])
    piece = AutoTokenizer.from_pretrained(str(folder.with_name(folder.name + "-raw")))   # SentencePiece-style
    assert piece.tokenize("banana") == ["▁banana"] and reads_as_one_token(piece, "banana")
    assert reads_as_one_token(piece, "血压")       # an entry as written: one token inside running text too
    assert piece.tokenize("心脏") == ["▁心脏"] and not reads_as_one_token(piece, "心脏")   # only at a word's start
    assert not reads_as_one_token(piece, "bananas") and not reads_as_one_token(piece, "高血压")
    texts = ["banana 血压 高血压 心脏"] * 3
    assert sorted(domain_terms(bert, texts, top_n=10, min_count=1)) == ["心脏", "血压", "高血压"]
    assert sorted(domain_terms(piece, texts, top_n=10, min_count=1)) == ["心脏", "高血压"]
