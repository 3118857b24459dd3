"""Fill each query's negative quota from the strategies' candidates by weight, then with random anchors.

Example::

    plan = quota_plan(num_negatives=7, hard_ratio=0.7, weights={"dense": 1.0})   # {"dense": 5, "random": 2}
    chosen, stats = mix_negatives(queries, {"dense": dense_lists}, plan, n_passages, guard, seed=42,
                                  passage_ids=ids, dense_score=score_fn)
"""
from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Callable

RANDOM = "random"


@dataclass
class MiningQuery:
    qid: str
    pos_ids: list[str]
    positive_score: float | None = None
    positive_docs: set[str] | None = None
    given: list[int] | None = None   # passage indices given as negatives with the data (kept first, strategy "given")


def quota_plan(num_negatives: int, hard_ratio: float, weights: dict[str, float]) -> dict[str, int]:
    """Integer quotas per strategy: round(num * hard_ratio) shared by weight (largest remainder), the rest random."""
    hard = int(round(num_negatives * hard_ratio))
    active = {k: w for k, w in weights.items() if w > 0 and k != RANDOM}
    if not active:
        return {RANDOM: num_negatives}
    total = sum(active.values())
    exact = {k: hard * w / total for k, w in active.items()}
    plan = {k: int(v) for k, v in exact.items()}
    leftover = hard - sum(plan.values())
    for k in sorted(active, key=lambda k: (-(exact[k] - plan[k]), -active[k], k))[:leftover]:
        plan[k] += 1
    plan[RANDOM] = num_negatives - hard
    return plan


def mix_negatives(queries: list[MiningQuery], candidates: dict[str, list[list[tuple[int, float, int]]]],
                  plan: dict[str, int], n_passages: int, guard, seed: int, passage_ids: list[str],
                  passage_docs: list[str] | None = None,
                  dense_score: Callable[[int, int], float] | None = None,
                  random_excluded: list[set[int]] | None = None) -> tuple[list[list[tuple]], dict]:
    """For each query, a list of (passage_index, strategy, score, rank) — strategies in plan order, then random.

    A strategy that runs dry hands its deficit to the next one; what the hard strategies cannot fill goes to the
    random pool. Candidates are visited in a seeded random order, so the same seed gives the same output.
    ``random_excluded[q]`` (passage indices) keeps random anchors away from query q's near neighbours.
    """
    order = [k for k in plan if k != RANDOM]
    chosen_all: list[list[tuple]] = []
    per_strategy = Counter()
    ranks, scores = defaultdict(list), defaultdict(list)
    empty = 0
    for qi, query in enumerate(queries):
        rng = random.Random(f"{seed}:{query.qid}")
        positives = set(query.pos_ids)
        taken: set[str] = set()
        picked: list[tuple] = []
        deficit = 0
        for index in query.given or []:
            # Negatives labelled by the user are kept as given (no score margin), but never a positive or a repeat.
            pid = passage_ids[index]
            if pid in positives or pid in taken:
                guard.drops["given_positive_or_repeat"] += 1
                continue
            taken.add(pid)
            picked.append((index, "given", dense_score(qi, index) if dense_score else None, None))
            deficit -= 1

        def try_add(index: int, strategy: str, rank: int | None) -> bool:
            pid = passage_ids[index]
            score = dense_score(qi, index) if dense_score else None
            doc = passage_docs[index] if passage_docs else None
            if not guard.allows(pid, positives, taken, score, query.positive_score, doc, query.positive_docs):
                return False
            taken.add(pid)
            picked.append((index, strategy, score, rank))
            return True

        for strategy in order:
            want = plan[strategy] + deficit
            if want <= 0:
                deficit = want
                continue
            pool = list(candidates.get(strategy, [[]] * len(queries))[qi])
            rng.shuffle(pool)
            got = 0
            for index, _, rank in pool:
                if got == want:
                    break
                got += try_add(index, strategy, rank)
            deficit = want - got
        want = max(0, plan.get(RANDOM, 0) + deficit)
        got, attempts = 0, 0
        excluded = random_excluded[qi] if random_excluded else ()
        while got < want and attempts < 20 * want + 50:
            attempts += 1
            index = rng.randrange(n_passages)
            if index in excluded:
                continue
            got += try_add(index, RANDOM, None)
        guard.drops["unfilled"] += want - got
        if not picked:
            empty += 1
        for index, strategy, score, rank in picked:
            per_strategy[strategy] += 1
            if rank is not None:
                ranks[strategy].append(rank)
            if score is not None:
                scores[strategy].append(score)
        chosen_all.append(picked)
    stats = {
        "queries": len(queries),
        "queries_without_negatives": empty,
        "negatives_per_strategy": dict(per_strategy),
        "mean_rank_per_strategy": {k: round(sum(v) / len(v), 2) for k, v in ranks.items()},
        "mean_score_per_strategy": {k: round(sum(v) / len(v), 4) for k, v in scores.items()},
        "drops": dict(guard.drops),
    }
    return chosen_all, stats
