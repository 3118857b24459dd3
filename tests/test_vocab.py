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


def test_known_characters_are_the_corpus_han_characters_the_base_already_has(tiny_model):
    from bgetune.vocab import known_characters

    texts = ["的猫是 a1", "在的。", "的"]    # 猫: not in the base; a, 1, 。: not Han
    assert known_characters(tiny_model.tokenizer, texts) == ["的", "在", "是"]   # 的 ×3, then by code point
    assert known_characters(tiny_model.tokenizer, texts, min_count=2) == ["的"]


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
