from bgetune.modelcard import finetuned_card, hybrid_section
from bgetune.params import params_from_dict


def test_the_card_says_how_to_fuse_with_bm25_as_val_chose():
    convex = hybrid_section({"method": "convex", "weights": [0.2, 0.8], "ndcg@10": 0.8078, "bm25_ndcg@10": 0.8019})
    assert "## With BM25 (hybrid)" in convex and "score = 0.2 × dense + 0.8 × BM25" in convex
    assert "min-max normalised" in convex and "NDCG@10 0.8078 against BM25's 0.8019" in convex
    rrf = hybrid_section({"method": "rrf", "weights": [2.0, 1.0], "rrf_k": 60})
    assert "2.0 / (60 + dense rank) + 1.0 / (60 + BM25 rank)" in rrf and "NDCG@10" not in rrf
    bm25_only = hybrid_section({"method": "convex", "weights": [0.0, 1.0], "ndcg@10": 0.8, "bm25_ndcg@10": 0.8})
    assert "BM25 alone ranked best" in bm25_only and "(hybrid)" not in bm25_only
    assert "use BM25 (k1 1.5, b 0.75) over jieba's search-mode words" in bm25_only   # recorded before lexical
    pairs = hybrid_section({"method": "convex", "weights": [0.6, 0.4],
                            "bm25": {"tokens": "cjk_bigrams", "k1": 1.2, "b": 0.75}})
    assert "; BM25 (k1 1.2, b 0.75) over each Chinese character and each adjacent pair" in pairs
    assert "Val chose" not in pairs                                   # val did not choose the BM25


def test_the_card_says_which_bm25_val_chose_for_the_fusion():
    choice = {"chosen": "plain", "plain_val_ndcg@10": 0.4012, "term_weighted_val_ndcg@10": 0.3991}
    plain = hybrid_section({"method": "convex", "weights": [0.6, 0.4], "bm25_choice": choice})
    assert "Val chose plain BM25: the fusion scored val NDCG@10 0.4012 with it, 0.3991 with query-term weights" in plain
    weighted = hybrid_section({"method": "convex", "weights": [0.0, 1.0],
                               "bm25_choice": {**choice, "chosen": "term_weighted", "term_weighted_val_ndcg@10": 0.5}})
    assert "Val chose the term weights: the fusion scored val NDCG@10 0.5000 with them, 0.4012 with plain BM25." \
        in weighted and "BM25 alone ranked best" in weighted


def test_the_card_names_the_optimizer_and_the_seed_the_training_drew_from():
    params = params_from_dict({"seed": 42, "train": {"seed": 7, "optimizer": "schedule_free_adamw"}})
    card = finetuned_card(params, {"stage1": {"steps": 10}}, {"train_queries": 4, "passages": 8})
    assert "optimizer schedule_free_adamw, seed 7" in card
    assert "seed 42" in finetuned_card(params_from_dict({"seed": 42}), {"stage1": {}}, {})


def test_the_card_names_the_loss_terms_that_were_on():
    default = finetuned_card(params_from_dict({}), {"stage1": {}}, {})
    assert "| loss | infonce, temperature 0.02, hardness weighting of in_batch_negatives (α 9.0) |" in default
    plain = params_from_dict({"train": {"hardness_mode": "off", "directions": ["query_to_doc", "doc_to_query"],
                                        "noise_weight": 0.5}})
    card = finetuned_card(plain, {"stage1": {}}, {})
    assert "| loss | infonce, temperature 0.02, directions query_to_doc+doc_to_query (joint), noise penalty 0.5 |" \
        in card and "hardness" not in card
    pair = finetuned_card(params_from_dict({"train": {"loss": "cosine", "hardness_mode": "off"}}), {"stage1": {}}, {})
    assert "| loss | cosine |" in pair


def test_the_card_says_how_to_index_when_the_evaluation_used_windows():
    windows = {"max_chars": 80, "overlap_chars": 40, "passages": 1951, "passages_with_windows": 1900,
               "window_vectors": 10282, "weight": 0.8}
    card = finetuned_card(params_from_dict({}), {"stage1": {}}, {"windows": windows})
    assert "## Indexing" in card and "windows of whole sentences up to 80 characters" in card
    assert "10282 window vectors beside 1951 passages" in card
    assert "## Indexing" not in finetuned_card(params_from_dict({}), {"stage1": {}}, {"windows": None})


def test_the_base_card_says_where_the_rows_started():
    from bgetune.modelcard import base_card

    counts = {"rows_from_entry": 800, "rows_from_parts": 60, "rows_kept": 3}
    summary = {"characters_added": 863, "init": counts}
    card = base_card(params_from_dict({}), summary, passages=126)
    assert "`bundled:cc-cedict`: 800 from their own entry, 60 from their parts', 3 without one (noise) |" in card
    restarted = base_card(params_from_dict({"vocab": {"init_known_characters": True}}),
                          {**summary, "init": {**counts, "known_rows_from_entry": 170, "known_rows_kept": 2}}, 126)
    assert "(noise); the base's own rows of 170 corpus characters re-started the same way |" in restarted


def test_the_card_says_to_encode_passages_with_their_titles_when_training_did():
    params = params_from_dict({})
    titled = finetuned_card(params, {"stage1": {}}, {"titled_passages": 120})
    assert "began with their title on a line of their own (`chunk.title_prefix` put it before 120 of them)" in titled
    assert 'title + "\\n" + text' in titled
    assert "title_prefix" not in finetuned_card(params, {"stage1": {}}, {"titled_passages": 0})


def test_the_card_names_the_rate_the_lora_adapters_trained_at():
    def hyperparameters(train: dict) -> str:
        card = finetuned_card(params_from_dict({"train": train}), {"stage1": {}}, {})
        return next(line for line in card.splitlines() if "hyperparameters" in line)

    assert "lr 0.0005 (LoRA adapters)," in hyperparameters({"method": "lora"})          # lora.lr's default
    assert "lr 0.0002 (LoRA adapters)," in hyperparameters({"method": "lora", "lora": {"lr": 2e-4}})
    assert "lr 5e-05," in hyperparameters({"method": "lora", "lora": {"lr": None}})     # null: train.lr
    assert "lr 5e-05," in hyperparameters({"method": "full"})                          # full fine-tuning: train.lr
