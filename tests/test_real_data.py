"""Real data written by others (../shared/data, or BGETUNE_SHARED_DATA): read by path, never copied."""
import os
from pathlib import Path

import pytest

from bgetune.corpus import build_corpus
from bgetune.ingest import load_documents
from bgetune.params import ChunkParams, DataParams, SplitParams

SHARED = Path(os.environ.get("BGETUNE_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
CMRC = SHARED / "cmrc2018"
pytestmark = pytest.mark.skipif(not CMRC.exists(), reason=f"{CMRC} not present")


def test_cmrc2018_reads_every_article_and_question_and_maps_answers_to_passages():
    documents, report = load_documents(CMRC, DataParams())
    assert report["files"] == {"squad": 2}
    assert report["documents"] == 1104 and report["questions"] == 4221
    result = build_corpus(documents, ChunkParams(max_chars=400), SplitParams(train=0.7, val=0.1, test=0.2), 42)
    assert len(result.pairs) == 4221
    by_id = {p.id: p.text for p in result.passages}
    # CMRC answers carry offsets: each question's positive is the one chunk holding its answer text.
    located = sum(1 for pair, qa in zip(result.pairs, (q for d in documents for s in d.sections for q in s.qas))
                  if len(pair.pos_ids) == 1 and qa.answer_text and qa.answer_text in by_id[pair.pos_ids[0]])
    assert located / len(result.pairs) > 0.95
    assert set(p.split for p in result.passages) == {"train", "val", "test"}
