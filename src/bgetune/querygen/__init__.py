"""Query generators: each turns passages (and what came with them) into (query, positive passage ids) pairs.

``existing``: questions that came with the data; ``heuristic``: titles and key sentences, offline. Each source is a
function ``(passages, existing_pairs, params, seed) -> list[Pair]``, registered in SOURCES, so an LLM source plugs in
the same way.
"""
from bgetune.querygen.existing import existing_pairs
from bgetune.querygen.heuristic import heuristic_pairs

SOURCES = {"existing": existing_pairs, "heuristic": heuristic_pairs}
