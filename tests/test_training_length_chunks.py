"""Length-sorted chunks: the embeddings and gradients of one pass, with each chunk cut to its own longest text."""
import pytest
import torch

from bgetune.params import TrainParams
from bgetune.training.length_chunks import embed_in_length_chunks
from bgetune.training.losses import build_loss

TEXTS = ["cat", "a very long text about a red cat and a blue dog and a green fish", "dog",
         "a long text about the small bird", "fish", "a red apple and a big banana", "bird"]


def widths_seen(model) -> tuple[list[int], object]:
    widths = []
    hook = model[0].register_forward_pre_hook(lambda module, args: widths.append(args[0]["input_ids"].shape[1]))
    return widths, hook


def test_chunks_give_the_embeddings_and_gradients_of_one_pass(tiny_model):
    tiny_model.eval()   # no dropout: both ways see the same network
    features = tiny_model.preprocess(TEXTS)
    results = {}
    for chunk_size in (0, 2):
        tiny_model.zero_grad()
        embeddings = embed_in_length_chunks(tiny_model, features, chunk_size)
        (embeddings * torch.arange(embeddings.shape[1])).sum().backward()
        grad = tiny_model[0].auto_model.encoder.layer[0].attention.self.query.weight.grad.clone()
        results[chunk_size] = (embeddings.detach(), grad)
    assert torch.allclose(results[2][0], results[0][0], atol=1e-5)   # same rows, in the input order
    assert torch.allclose(results[2][1], results[0][1], atol=1e-5)


def test_each_chunk_is_padded_only_to_its_own_longest_text(tiny_model):
    features = tiny_model.preprocess(TEXTS)
    lengths = sorted(features["attention_mask"].sum(dim=1).tolist(), reverse=True)
    widths, hook = widths_seen(tiny_model)
    try:
        embed_in_length_chunks(tiny_model, features, chunk_size=3)
    finally:
        hook.remove()
    assert widths == [lengths[0], lengths[3], lengths[6]]   # 7 texts: chunks of 3, 3, 1, longest first
    assert widths[-1] < features["input_ids"].shape[1]


def test_left_padding_keeps_the_used_columns(tiny_model):
    """Tokenisers that pad on the left: a chunk keeps the trailing columns its texts use."""
    tiny_model.eval()
    tokenizer = tiny_model.tokenizer
    tokenizer.padding_side = "left"
    try:
        features = tiny_model.preprocess(TEXTS)
    finally:
        tokenizer.padding_side = "right"
    assert features["attention_mask"][0, 0] == 0   # really left-padded
    widths, hook = widths_seen(tiny_model)
    try:
        chunked = embed_in_length_chunks(tiny_model, features, chunk_size=3)
    finally:
        hook.remove()
    assert widths[-1] < features["input_ids"].shape[1]
    short = tiny_model.preprocess(["cat"])
    # The shortest text, alone in its chunk, embeds as it does when tokenised alone (no padding at all).
    assert torch.allclose(chunked[0], tiny_model(short)["sentence_embedding"][0], atol=1e-5)


def test_a_column_no_larger_than_the_chunk_is_one_pass(tiny_model):
    features = tiny_model.preprocess(TEXTS[:3])
    widths, hook = widths_seen(tiny_model)
    try:
        embed_in_length_chunks(tiny_model, features, chunk_size=16)
    finally:
        hook.remove()
    assert widths == [features["input_ids"].shape[1]]


def test_the_training_loss_is_the_same_with_and_without_chunks(tiny_model):
    from tests.test_training_losses import batch_for

    tiny_model.eval()
    features, label = batch_for(tiny_model)
    losses = [build_loss(tiny_model, TrainParams(length_chunk_size=size, temperature=0.05))(features, label).item()
              for size in (0, 3)]
    assert losses[1] == pytest.approx(losses[0], rel=1e-5)


def test_auto_chunks_on_a_cpu_and_makes_one_pass_on_a_gpu(tiny_model, caplog):
    from bgetune.training.length_chunks import resolve_length_chunk_size

    assert [resolve_length_chunk_size("auto", device) for device in ("cpu", "cuda", "mps")] == [16, 0, 0]
    assert resolve_length_chunk_size(3, "cuda") == 3 and resolve_length_chunk_size(0, "cpu") == 0
    assert TrainParams().length_chunk_size == "auto"
    # The loss takes the resolved size for the model's device: the tiny model is on the CPU here.
    assert build_loss(tiny_model, TrainParams()).length_chunk_size == 16
    assert build_loss(tiny_model, TrainParams(length_chunk_size=5)).length_chunk_size == 5
