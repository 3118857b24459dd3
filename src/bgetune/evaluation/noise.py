"""Noise similarity: how similar in-domain queries look to unrelated chit-chat.

A RAG system that must answer "I don't know" to small talk needs its retriever to score unrelated text low. After
fine-tuning, compare ``noise_similarity_mean`` / ``_p95`` with the base model's and with the positives' similarity:
``noise_over_positive_rate`` is the share of queries for which some noise text beats the query's own positive.

Example::

    metrics = noise_similarity(query_vectors, noise_vectors, positive_scores)
"""
from __future__ import annotations

import numpy as np

from bgetune.records import InputError, read_text

# Shipped default: everyday chit-chat and off-topic requests in Chinese and English (written for this project).
CHITCHAT = [
    "你好，在吗？", "今天天气怎么样？", "讲个笑话吧", "你叫什么名字？", "晚饭吃什么好呢", "周末有什么好看的电影",
    "谢谢你，再见", "我有点无聊，陪我聊聊天", "帮我写一首关于春天的诗", "明天会下雨吗", "你喜欢什么颜色",
    "推荐一首好听的歌", "现在几点了", "哈哈哈太好笑了", "你是机器人吗", "我今天心情不错", "给我讲讲宇宙的起源",
    "世界上最高的山是哪座", "怎么学好英语", "足球比赛谁赢了", "猫为什么喜欢纸箱", "早上好！", "晚安",
    "你能做什么", "帮我订一张去上海的机票", "Hello, how are you?", "What's the weather like today?",
    "Tell me a joke.", "Who won the game last night?", "Recommend a good movie.", "Thanks, bye!",
    "What time is it?", "I'm bored.", "Write a poem about the sea.", "Do you like pizza?",
]


def load_noise_texts(path: str | None) -> list[str]:
    """One text per line from ``path``; the shipped chit-chat list when ``path`` is empty."""
    if not path:
        return list(CHITCHAT)
    texts = [line.strip() for line in read_text(path).splitlines() if line.strip()]
    if not texts:
        raise InputError(f"{path}: no noise texts (one per line expected; eval.noise_texts)")
    return texts


def noise_similarity(query_vectors: np.ndarray, noise_vectors: np.ndarray,
                     positive_scores: list[float] | None = None) -> dict:
    if not len(query_vectors) or not len(noise_vectors):
        return {}
    sims = query_vectors @ noise_vectors.T
    metrics = {"noise_similarity_mean": round(float(sims.mean()), 6),
               "noise_similarity_p95": round(float(np.percentile(sims, 95)), 6)}
    if positive_scores is not None and len(positive_scores) == len(query_vectors):
        over = sims.max(axis=1) >= np.asarray(positive_scores)
        metrics["noise_over_positive_rate"] = round(float(over.mean()), 6)
    return metrics


def noise_as_queries(noise_query_vectors: np.ndarray, passage_vectors: np.ndarray,
                     positive_scores: list[float] | None = None) -> dict:
    """The other direction: unrelated texts asked *as queries* against the corpus. Their best match should stay
    low — ``noise_query_top_mean`` / ``_p95`` — and below what real queries score with their positives:
    ``noise_query_over_median_positive`` is the share of noise texts whose top passage scores above the median
    positive similarity of the test queries (a retriever that would answer small talk with a passage)."""
    if not len(noise_query_vectors) or not len(passage_vectors):
        return {}
    top = (noise_query_vectors @ passage_vectors.T).max(axis=1)
    metrics = {"noise_query_top_mean": round(float(top.mean()), 6),
               "noise_query_top_p95": round(float(np.percentile(top, 95)), 6)}
    if positive_scores:
        median = float(np.median(positive_scores))
        metrics["noise_query_over_median_positive"] = round(float((top > median).mean()), 6)
    return metrics
