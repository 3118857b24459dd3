"""Evaluation: ranking metrics, dense and BM25 retrieval over the corpus, per-query results."""
