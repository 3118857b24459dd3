"""bgetune.parallel: text work over spawned worker processes gives the serial result, item for item, at every call
site (BM25 over jieba words, TF-IDF, keywords, vocab terms, key-sentence queries); small inputs stay in-process; a pool
that breaks falls back to serial; BGETUNE_CPU_WORKERS is checked."""
from __future__ import annotations

import logging
import os
import sys

import pytest

from bgetune import parallel
from bgetune.errors import BgetuneError
from bgetune.parallel import cpu_workers, map_texts

TEXTS = ["高血压患者的饮食要注意少盐，多吃蔬菜。", "糖尿病的治疗包括饮食控制和运动。", "甲状腺结节大多是良性的，定期复查即可。",
         "感冒发烧怎么办？多喝水，注意休息。", "胃痛可能与幽门螺杆菌感染有关。", "孩子咳嗽吃什么药好？",
         "HPV疫苗的接种年龄是9到45岁。", "心脏病患者不宜剧烈运动。"] * 3


def process_id(text: str) -> int:
    return os.getpid()


def exit_in_worker(text: str) -> str:
    # A worker that dies (as one killed for memory would); the parent runs the same function normally.
    if os.environ.get("TEST_PARENT_PID") != str(os.getpid()):
        os._exit(3)
    return text[::-1]


@pytest.fixture
def two_workers(monkeypatch):
    """Every map_texts call goes to two spawned processes, however small its input."""
    monkeypatch.setenv("BGETUNE_CPU_WORKERS", "2")
    monkeypatch.setattr(parallel, "PARALLEL_MIN_CHARS", 0)


def test_map_texts_runs_in_other_processes_and_keeps_order(two_workers):
    pids = map_texts(process_id, TEXTS, "pids")
    assert os.getpid() not in pids and len(set(pids)) >= 1
    assert map_texts(len, TEXTS, "lengths") == [len(t) for t in TEXTS]


def test_large_work_says_when_it_begins_and_how_long_it_took(monkeypatch, caplog):
    monkeypatch.setenv("BGETUNE_PARALLEL_MIN_CHARS", "100")   # the texts hold ~400 characters, one ~20
    for workers, where in (("1", "24 texts in this process …"), ("2", "24 texts over 2 processes …")):
        monkeypatch.setenv("BGETUNE_CPU_WORKERS", workers)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="bgetune.parallel"):
            map_texts(len, TEXTS, "lengths")
        messages = [r.getMessage() for r in caplog.records]
        assert len(messages) == 2 and messages[0] == f"lengths: {where}", messages
        assert messages[1].startswith("lengths: done in ") and messages[1].endswith(" s")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="bgetune.parallel"):
        map_texts(len, TEXTS[:1], "lengths")   # under the threshold: silent
    assert not caplog.records


def test_small_inputs_and_one_worker_stay_in_this_process(monkeypatch):
    assert set(map_texts(process_id, TEXTS, "pids")) == {os.getpid()}            # under PARALLEL_MIN_CHARS
    monkeypatch.setenv("BGETUNE_CPU_WORKERS", "1")
    assert set(map_texts(process_id, TEXTS, "pids", min_chars=0)) == {os.getpid()}
    assert set(map_texts(process_id, TEXTS[:3], "pids", workers=2, min_chars=0)) == {os.getpid()}   # < 2 per worker


def test_a_broken_pool_falls_back_to_serial_and_says_so(two_workers, monkeypatch, caplog):
    monkeypatch.setenv("TEST_PARENT_PID", str(os.getpid()))
    with caplog.at_level(logging.WARNING, logger="bgetune.parallel"):
        assert map_texts(exit_in_worker, TEXTS, "reversing") == [t[::-1] for t in TEXTS]
    assert "reversing: worker processes failed" in caplog.text


@pytest.mark.parametrize("script, guarded", [
    ("run()\n", False),
    ("def main():\n    run()\n\n\nif __name__ == '__main__':\n    main()\n", True),
    ("if '__main__' == __name__:\n    run()\n", True),
    ("if __name__ != '__main__':\n    run()\n", False),
    ("def f():\n    if __name__ == '__main__':\n        run()\n", False),   # not at the top level
])
def test_an_unguarded_main_script_keeps_the_work_in_this_process(tmp_path, monkeypatch, caplog, script, guarded):
    import types

    path = tmp_path / "user_script.py"
    path.write_text(script)
    main = types.ModuleType("__main__")
    main.__file__ = str(path)
    monkeypatch.setitem(sys.modules, "__main__", main)
    monkeypatch.setenv("BGETUNE_CPU_WORKERS", "2")
    monkeypatch.setenv("BGETUNE_PARALLEL_MIN_CHARS", "0")
    parallel.main_is_guarded.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="bgetune.parallel"):
            assert parallel.main_is_guarded() is guarded
            if not guarded:   # no worker is started: spawning would run the user's script in each
                assert set(map_texts(process_id, TEXTS, "pids")) == {os.getpid()}
        assert (f"{path} has no `if __name__" in caplog.text) is not guarded
        assert "worker processes failed" not in caplog.text   # none was started, so none failed
    finally:
        parallel.main_is_guarded.cache_clear()


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_bad_worker_count_is_one_line_naming_the_variable(monkeypatch, value):
    monkeypatch.setenv("BGETUNE_CPU_WORKERS", value)
    with pytest.raises(BgetuneError, match="BGETUNE_CPU_WORKERS"):
        cpu_workers()
    monkeypatch.setenv("BGETUNE_CPU_WORKERS", "2")
    monkeypatch.setenv("BGETUNE_PARALLEL_MIN_CHARS", "-1")
    with pytest.raises(BgetuneError, match="BGETUNE_PARALLEL_MIN_CHARS='-1'"):
        map_texts(len, TEXTS, "lengths")


def test_the_threshold_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("BGETUNE_CPU_WORKERS", "2")
    monkeypatch.setenv("BGETUNE_PARALLEL_MIN_CHARS", "0")
    assert os.getpid() not in map_texts(process_id, TEXTS, "pids")


def test_default_worker_count_is_the_usable_cores_up_to_eight(monkeypatch):
    monkeypatch.delenv("BGETUNE_CPU_WORKERS", raising=False)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert cpu_workers() == max(1, min(8, cores))
    monkeypatch.setenv("BGETUNE_CPU_WORKERS", "12")
    assert cpu_workers() == 12


def test_every_call_site_gives_the_serial_result(monkeypatch, caplog):
    """The mining strategies, vocab's terms and qa-gen's key sentences, serial and over two processes."""
    from bgetune.lexical import BM25Index
    from bgetune.negatives.keyword import keyword_candidates
    from bgetune.negatives.tfidf import tfidf_candidates
    from bgetune.params.modelling import LexicalParams
    from bgetune.vocab import domain_terms

    class CharTokenizer:   # every character its own token, no multi-character term: all terms are candidates
        unk_token_id = 0

        def convert_tokens_to_ids(self, token):
            return 0

        def __call__(self, text, add_special_tokens=False):
            return {"input_ids": [1] * len(text)}

    passages = [t + TEXTS[(i + 3) % len(TEXTS)] for i, t in enumerate(TEXTS)]
    queries = ["高血压饮食", "甲状腺结节复查", "孩子咳嗽", "胃痛怎么办"] * 2

    def run_all():
        index = BM25Index(passages, LexicalParams(tokens="words"))
        return (index.search(queries, 5),
                tfidf_candidates(passages, queries, 1, 10),
                keyword_candidates(passages, queries, top_keywords=5),
                domain_terms(CharTokenizer(), passages, top_n=20, min_count=1, user_terms=["幽门螺杆菌感染"]))

    monkeypatch.setenv("BGETUNE_CPU_WORKERS", "1")
    serial = run_all()
    monkeypatch.setenv("BGETUNE_CPU_WORKERS", "2")
    monkeypatch.setattr(parallel, "PARALLEL_MIN_CHARS", 0)
    with caplog.at_level(logging.INFO, logger="bgetune.parallel"):
        spread = run_all()
    assert spread == serial
    assert serial[3][0] == "幽门螺杆菌感染"   # the user's term, kept whole by the workers' jieba too
    assert "高血压" in passages[serial[0][0][0][0]]   # 高血压饮食's top passage is about it (not an unranked list)
    done = [r.getMessage().split(":")[0] for r in caplog.records if "over 2 processes" in r.getMessage()]
    assert sorted(done) == sorted(["jieba words of the passages", "jieba words of the queries",
                                   "jieba words of the passages", "jieba words of the queries",
                                   "keywords of the passages", "keywords of the queries",
                                   "jieba terms of the passages"])


def test_key_sentence_queries_are_the_serial_ones(monkeypatch):
    from bgetune.params import params_from_dict
    from bgetune.querygen.heuristic import heuristic_pairs
    from bgetune.records import Passage

    passages = [Passage(id=f"p{i}", doc_id=f"d{i // 3}", text="".join(TEXTS[i:i + 4]), title="", split="train")
                for i in range(12)]
    qa_gen = params_from_dict({"model": {"base": "bundled:all-MiniLM-L6-v2"}}).qa_gen
    monkeypatch.setenv("BGETUNE_CPU_WORKERS", "1")
    serial = heuristic_pairs(passages, [], qa_gen, seed=0)
    monkeypatch.setenv("BGETUNE_CPU_WORKERS", "2")
    monkeypatch.setattr(parallel, "PARALLEL_MIN_CHARS", 0)
    assert heuristic_pairs(passages, [], qa_gen, seed=0) == serial
    assert serial[1]["key_sentence"] == len([p for p in serial[0] if p.qid.startswith("key:")]) > 0


def test_a_stage_script_spreads_its_work_once_and_writes_what_one_process_writes(tmp_path, tiny_model_dir):
    """qa-gen as `python stages/qa_gen.py`: the spawned workers import the script again, and its __main__ guard keeps
    them from running the stage a second time; the pairs are byte for byte those of a one-process run."""
    import subprocess

    from conftest import run_steps, write_project

    from bgetune.params import load_params

    outputs = {}
    for workers in ("1", "2"):
        root = write_project(tmp_path / workers, tiny_model_dir, with_code=True)
        run_steps(root, load_params(root / "params.yaml"), ("split",))
        env = {**os.environ, "BGETUNE_CPU_WORKERS": workers, "BGETUNE_PARALLEL_MIN_CHARS": "0", "OMP_NUM_THREADS": "1"}
        done = subprocess.run([sys.executable, "stages/qa_gen.py"], cwd=root, capture_output=True, text=True,
                              timeout=300, env=env)
        assert done.returncode == 0, done.stderr[-2000:]
        spread = [line for line in done.stderr.splitlines() if "over 2 processes" in line]
        assert len(spread) == (2 if workers == "2" else 0), done.stderr   # passages, then key sentences
        assert done.stderr.count("results/qa_gen.json") <= 1 and "bootstrapping phase" not in done.stderr
        outputs[workers] = {p.relative_to(root).as_posix(): p.read_bytes()
                            for p in sorted((root / "data" / "pairs").rglob("*")) if p.is_file()}
    assert outputs["2"] == outputs["1"] and outputs["1"]
