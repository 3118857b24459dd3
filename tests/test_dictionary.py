"""The dictionary start of new rows: CC-CEDICT read, senses chosen, rows pointed at their English meaning."""
import pytest
import torch

from bgetune.vocab import expand_vocabulary

DICTIONARY = """# CC-CEDICT-format lines: TRAD SIMP [pinyin] /gloss/.../
貓 猫 [mao1] /cat/(slang) a kitty/
狗 狗 [gou3] /surname Gou/dog/
魚 鱼 [yu2] /fish/CL:條|条[tiao2]/red/
紅 红 [hong2] /red/
了 了 [le5] /(completed action marker)/
"""


def test_english_senses_keep_everyday_meanings_as_plain_words():
    from bgetune.dictionary import english_senses

    glosses = ["to catch cold", "(common) cold", "CL:場|场[chang2],次[ci4]", "(coll.) to be interested in",
               "(Tw) to detest", "see 感到[gan3 dao4]", "variant of 冒[mao4]"]
    assert english_senses(glosses) == ["catch cold", "cold"]
    assert english_senses(["(completed action marker)"]) == ["completed action marker"]
    assert english_senses(["head", "hair style", "the top", "end"], max_senses=2) == ["head", "hair style"]
    assert english_senses(["surname Wang"]) == []


def test_dictionary_init_points_each_new_row_at_its_english_senses(tiny_model, tmp_path):
    from bgetune.dictionary import dictionary_init, read_dictionary

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
    from bgetune.dictionary import read_dictionary, resolve_dictionary_path

    path = tmp_path / "words.txt"
    path.write_text(DICTIONARY + "猫 cat\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"words.txt: line 7: not a CC-CEDICT entry"):
        read_dictionary(str(path))
    with pytest.raises(ValueError, match="unknown bundled dictionary 'nope'"):
        resolve_dictionary_path("bundled:nope")
    assert resolve_dictionary_path("data/mine.txt") == "data/mine.txt"


def test_bundled_cc_cedict_gives_medical_words_their_english_meaning():
    from bgetune.dictionary import english_senses, read_dictionary, resolve_dictionary_path

    glosses = read_dictionary(resolve_dictionary_path("bundled:cc-cedict"))
    assert len(glosses) > 100_000
    assert english_senses(glosses["高血压"]) == ["high blood pressure", "hypertension"]
    assert english_senses(glosses["肝"])[0] == "liver" and english_senses(glosses["咳嗽"]) == ["cough"]


# The tiny base knows 的 是 在 了 一 (conftest.BASE_CHARS); here 的 and 是 have (made-up) entries, 在 none.
KNOWN_DICTIONARY = DICTIONARY + "的 的 [de5] /red/\n是 是 [shi4] /dog/blue/\n"


def test_dictionary_init_restarts_the_known_rows_it_is_given_and_nothing_else(tiny_model_dir, tmp_path):
    from bgetune.models import load_model
    from bgetune.dictionary import dictionary_init, read_dictionary

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
