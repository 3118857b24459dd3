"""Masked-LM warm-up of new vocabulary rows: with scope embeddings only the new rows move."""
import torch

from bgetune.params import VocabParams
from bgetune.vocab import expand_vocabulary
from bgetune.warmup import masked_lm_warmup


def test_embeddings_scope_teaches_the_new_rows_and_leaves_everything_else(tiny_model):
    old = len(tiny_model.tokenizer)
    expand_vocabulary(tiny_model, ["猫", "狗"], init_noise=1.0, seed=0)
    before = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    texts = ["猫 和 狗 是 the cat and the dog", "的 猫 red cat", "狗 blue dog 的"] * 8
    report = masked_lm_warmup(tiny_model, texts, VocabParams(warmup_steps=6, warmup_lr=1e-2, warmup_batch_size=4),
                              seed=0, device="cpu", precision="fp32", progress=False, old_vocab_size=old)
    assert report["steps"] == 6 and report["final_loss"] is not None
    after = tiny_model.state_dict()
    key = next(k for k in after if k.endswith("word_embeddings.weight"))
    assert torch.equal(after[key][:old], before[key][:old])                   # old rows untouched
    assert not torch.equal(after[key][old:], before[key][old:])               # new rows learned
    layer = next(k for k in after if "layer.0.attention.self.query.weight" in k)
    assert torch.equal(after[layer], before[layer])                           # layers untouched
