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
