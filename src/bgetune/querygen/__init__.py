"""Query generators: each turns passages (and what came with them) into (query, positive passage ids) pairs.

``existing``: questions that came with the data; ``heuristic``: titles and key sentences, offline; ``llm``: an
OpenAI-compatible chat endpoint. Each source is a function ``(passages, existing_pairs, qa_params, seed, *, device,
progress, lexical) -> (list[Pair], report)``, registered in SOURCES (a source ignores the keywords it does not use).
"""
from bgetune.querygen.existing import existing_pairs
from bgetune.querygen.heuristic import heuristic_pairs
from bgetune.querygen.llm import llm_pairs

SOURCES = {"existing": existing_pairs, "heuristic": heuristic_pairs, "llm": llm_pairs}
