"""Bad input, faults and hostile files, table-driven: every case runs a real stage script (in-process through
runpy, so it costs no interpreter start; a few also as subprocesses) and must end with

- a non-zero exit and one line naming the file and line, record or param (no traceback),
- no output of the stage changed or half-written,
- and, once the cause is fixed, the same stage running through.

Kill -9, a full disk and a misbehaving LLM endpoint are covered at the end.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import runpy
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
import yaml

from conftest import REPO, _deep_update, copy_project, run_steps, tiny_squad, write_project

sys.path.insert(0, str(REPO / "stages"))


# --------------------------------------------------------------------------------------------------- harness
def run_stage(root: Path, script: str, *args: str, env: dict | None = None) -> int | str:
    """Run stages/<script>.py as `python stages/<script>.py args` would, in ``root``; returns its exit code, or
    the message it exited with."""
    saved_argv, saved_cwd, saved_env = sys.argv, os.getcwd(), dict(os.environ)
    sys.argv = [f"stages/{script}.py", *args]
    os.environ.update(env or {})
    os.chdir(root)
    try:
        runpy.run_path(str(REPO / "stages" / f"{script}.py"), run_name="__main__")
        return 0
    except SystemExit as exit:
        return exit.code if exit.code is not None else 0
    finally:
        sys.argv = saved_argv
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)


def snapshot(root: Path) -> dict[str, str]:
    """Hashes of every pipeline output (what a failed stage must leave as it was)."""
    out = {}
    for folder in ("data", "models", "results", "metrics"):
        for path in sorted((root / folder).rglob("*")) if (root / folder).exists() else []:
            parts = path.relative_to(root).parts
            if path.is_file() and "raw" not in parts and "checkpoints" not in parts:   # inputs / resumable state
                out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def set_params(root: Path, **sections) -> None:
    params = yaml.safe_load((root / "params.yaml").read_text())
    _deep_update(params, sections)
    (root / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True))


@dataclass
class Case:
    id: str
    stage: str                       # the script in stages/
    break_it: Callable[[Path], None]
    message: str                     # a substring the one-line error must hold (file, line, record or param)
    fix: Callable[[Path], None] | None = None   # None: restore the project as it was
    level: str = "raw"               # raw: a project with only raw data; done: every stage has run
    args: tuple = ()
    env: dict | None = None


def write_raw(name: str, content: str | bytes, clear: bool = True):
    def apply(root: Path) -> None:
        raw = root / "data" / "raw"
        if clear:
            shutil.rmtree(raw)
            raw.mkdir(parents=True)
        path = raw / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return apply


def params_case(**sections):
    return lambda root: set_params(root, **sections)


def corrupt(relative: str, content: str | bytes):
    def apply(root: Path) -> None:
        path = root / relative
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return apply


def replace_line(relative: str, line: int, change: Callable[[dict], dict]):
    def apply(root: Path) -> None:
        path = root / relative
        lines = path.read_text(encoding="utf-8").splitlines()
        lines[line - 1] = json.dumps(change(json.loads(lines[line - 1])), ensure_ascii=False)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return apply


def squad_one_document() -> str:
    return json.dumps({"data": tiny_squad(1)["data"]})


def jsonl(*records) -> str:
    return "\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n"


def with_qrels(root: Path) -> None:
    beir = root / "data" / "raw"
    shutil.rmtree(beir)
    (beir / "qrels").mkdir(parents=True)
    (beir / "corpus.jsonl").write_text(jsonl({"_id": "d1", "text": "冰箱冷藏四度。"}, {"_id": "d2", "text": "空调。"}))
    (beir / "queries.jsonl").write_text(jsonl({"_id": "q1", "text": "冰箱温度"}))
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td9\t1\n")


def symlink_out(root: Path) -> None:
    (root.parent / f"{root.name}-secret.txt").write_text("top secret", encoding="utf-8")
    (root / "data" / "raw" / "leak.txt").symlink_to(root.parent / f"{root.name}-secret.txt")


def leak_a_test_query(root: Path) -> None:
    test = json.loads((root / "data" / "pairs" / "test.jsonl").read_text().splitlines()[0])
    train = (root / "data" / "pairs" / "train.jsonl").read_text()
    leaked = {**json.loads(train.splitlines()[0]), "query": test["query"]}
    (root / "data" / "pairs" / "train.jsonl").write_text(train + json.dumps(leaked, ensure_ascii=False) + "\n")


def half_checkpoint(root: Path) -> None:
    checkpoint = root / "models" / "checkpoints" / "train" / "stage1" / "trainer" / "checkpoint-9"
    checkpoint.mkdir(parents=True)
    (checkpoint / "trainer_state.json").write_text("")


BAD_YAML = "train:\n  lr: [unclosed\n"
CASES = [
    # ---------------------------------------------------------------------------------------- params
    Case("unknown key", "split", params_case(train={"lr_rate": 1e-5}), "train.lr_rate: unknown key"),
    Case("wrong type", "split", params_case(train={"batch_size": "large"}), "train.batch_size"),
    Case("ratio out of range", "split", params_case(mining={"hard_ratio": 1.5}), "mining.hard_ratio"),
    Case("split not summing to 1", "split", params_case(split={"test": 0.5}), "must be 1.0"),
    Case("no test split", "split", params_case(split={"train": 0.8, "val": 0.2, "test": 0.0}),
         "split.test must be > 0"),
    Case("no k values", "split", params_case(eval={"k_values": []}), "eval.k_values"),
    Case("one hybrid weight", "split", params_case(eval={"hybrid": {"weights": [1.0]}}), "eval.hybrid.weights"),
    Case("missing model folder", "split", params_case(model={"base": "models/nope"}), "model.base"),
    Case("hub model unreachable offline", "split", params_case(model={"base": "BAAI/bge-not-here-zh"}),
         "model.base: 'BAAI/bge-not-here-zh' is not a local folder", env={"HF_HUB_OFFLINE": "1"}),
    Case("a file as the model", "split", params_case(model={"base": "params.yaml"}), "not a model folder"),
    Case("cuda without a GPU", "split", params_case(model={"device": "cuda"}), "model.device: cuda but no CUDA"),
    Case("fp16 on a CPU", "split", params_case(train={"precision": "fp16"}), "train.precision: precision fp16"),
    Case("broken YAML", "split", corrupt("params.yaml", BAD_YAML), "params.yaml: line 3: not valid YAML"),
    Case("checkpoints not on evaluation steps", "split", params_case(train={"eval_every": 20, "checkpoint_every": 30}),
         "multiple of train.eval_every"),
    Case("missing noise texts", "split", params_case(train={"noise_texts": "data/noise.txt"}),
         "train.noise_texts: data/noise.txt does not exist"),
    Case("missing term file", "split", params_case(vocab={"term_file": "data/terms.txt"}), "vocab.term_file"),
    Case("missing dictionary", "split", params_case(vocab={"init": "dictionary", "dictionary": "data/cedict.txt"}),
         "vocab.dictionary: data/cedict.txt does not exist"),
    Case("unknown bundled dictionary", "vocab", params_case(vocab={"init": "dictionary", "dictionary": "bundled:nope"}),
         "vocab.dictionary: unknown bundled dictionary 'nope'", level="done"),
    Case("dictionary line in another format", "vocab",
         lambda r: (corrupt("data/cedict.txt", "貓 猫 [mao1] /cat/\n猫 = cat\n")(r),
                    set_params(r, vocab={"init": "dictionary", "dictionary": "data/cedict.txt"})),
         "data/cedict.txt: line 2: not a CC-CEDICT entry", level="done"),
    Case("stage 2 without pairs", "split", params_case(train={"stage2": {"enabled": True}}), "train.stage2.folder"),
    Case("API key variable unset", "split",
         params_case(qa_gen={"sources": ["existing", "llm"], "llm": {"api_key_env": "BGETUNE_NO_SUCH_KEY"}}),
         "qa_gen.llm.api_key_env: environment variable BGETUNE_NO_SUCH_KEY is not set"),
    Case("merge search without val", "split",
         params_case(split={"train": 0.8, "val": 0.0, "test": 0.2}, merge={"search": "grid"}),
         "merge.search needs val pairs"),
    Case("missing raw folder", "split", params_case(data={"raw_dir": "data/nowhere"}),
         "data.raw_dir: data/nowhere does not exist"),
    Case("empty raw folder param", "split", params_case(data={"raw_dir": ""}), "data.raw_dir: empty; name the folder"),
    Case("no question column", "split", params_case(data={"qa_columns": {"query": []}}),
         "data.qa_columns.query: List should have at least 1 item"),
    Case("empty CSV separator", "split", params_case(data={"csv_separator": ""}), "data.csv_separator"),
    Case("LoRA adapting nothing", "split", params_case(train={"lora": {"target_modules": []}}),
         "train.lora.target_modules"),
    Case("missing general set", "split", params_case(eval={"general": {"data": {"raw_dir": "data/general"}}}),
         "eval.general.data.raw_dir"),
    Case("unknown strategy", "split", params_case(mining={"weights": {"dense": 1, "bm52": 1}}), "mining.weights"),
    Case("not an http endpoint", "split", params_case(qa_gen={"llm": {"base_url": "ftp://host/v1"}}),
         "qa_gen.llm.base_url"),
    Case("unknown encoding", "split", params_case(data={"encoding": "klingon"}), "unknown encoding 'klingon'"),
    Case("no worker processes", "mine_negatives", lambda root: None,
         "environment variable BGETUNE_CPU_WORKERS='0': a whole number ≥ 1", level="done",
         env={"BGETUNE_CPU_WORKERS": "0"}),
    Case("a threshold that is not a number", "split", lambda root: None,
         "environment variable BGETUNE_PARALLEL_MIN_CHARS='2M': a whole number ≥ 0",
         env={"BGETUNE_PARALLEL_MIN_CHARS": "2M"}),
    # ---------------------------------------------------------------------------------------- inputs
    Case("path traversal in a file field", "split",
         write_raw("articles.jsonl", jsonl({"id": "x", "file": "../../../../etc/passwd"})),
         "articles.jsonl: line 1: text file '../../../../etc/passwd' is outside data.raw_dir"),
    Case("absolute path in a file field", "split", write_raw("articles.jsonl", jsonl({"id": "x", "file": "/etc/passwd"})),
         "is outside data.raw_dir"),
    Case("a link leading out of raw_dir", "split", symlink_out, "leak.txt is outside data.raw_dir"),
    Case("broken JSON line", "split", write_raw("a.jsonl", '{"text": "好。"}\n{"text": \n'),
         "a.jsonl: line 2: invalid JSON"),
    Case("JSON line not an object", "split", write_raw("a.jsonl", '{"text": "好。"}\n[1, 2]\n'),
         "a.jsonl: line 2: expected a JSON object"),
    Case("SQuAD paragraph without context", "split",
         write_raw("qa.json", json.dumps({"data": [{"title": "t", "paragraphs": [{"qas": []}]}]})),
         "qa.json: record data[0].paragraphs[0]: missing 'context'"),
    Case("CSV row with an empty answer", "split", write_raw("faq.csv", "question,answer\n问,答。\n问二,\n"),
         "faq.csv: row 3: empty answer column 'answer'"),
    Case("CSV without the question column", "split", write_raw("faq.csv", "q,answer\n问,答。\n"),
         "column(s) ['question'] not found"),
    Case("GB18030 read as UTF-8", "split", write_raw("doc.txt", "一\n二\n".encode() + "三".encode("gb18030")),
         "doc.txt: line 3: not valid utf-8"),
    Case("old Word and PowerPoint files", "split",
         lambda r: (write_raw("a.doc", b"\xd0\xcf")(r), write_raw("b.pptx", b"PK", False)(r)),
         "no documents bgetune can read: 2 file(s) of an unsupported type (a.doc, b.pptx); supported:"),
    Case("a PDF cut off in the download", "split", write_raw("a.pdf", b"%PDF"), "a.pdf: not a readable PDF ("),
    Case("a .doc renamed .docx", "split", write_raw("b.docx", b"\xd0\xcf\x11\xe0"),
         "b.docx: not a Word .docx file (not a zip archive)"),
    Case("empty JSON file", "split", write_raw("empty.json", ""), "empty.json: empty file"),
    Case("emoji-only documents", "split", write_raw("emoji.txt", "😀🎉👍"), "no documents with text found"),
    Case("duplicate document ids", "split", write_raw("a.jsonl", jsonl({"id": 1, "text": "甲。"}, {"id": 1, "text": "乙。"})),
         "duplicate document ids"),
    Case("one document for three splits", "split", write_raw("qa.json", squad_one_document()),
         "cannot fill the val, test split(s)"),
    Case("broken gzip", "split", write_raw("dev.jsonl.gz", b"not gzip"), "dev.jsonl.gz: not a valid gzip file"),
    Case("broken workbook", "split", write_raw("faq.xlsx", b"not a workbook"), "faq.xlsx: cannot read workbook"),
    Case("FlagEmbedding pos not a list", "split", write_raw("train.jsonl", jsonl({"query": "q", "pos": "p"})),
         "train.jsonl: line 1: 'pos' must be a non-empty list"),
    Case("qrel naming an unknown document", "split", with_qrels, "qrels/test.tsv: line 2: unknown document id 'd9'"),
    Case("llama-index query naming unknown nodes", "split",
         write_raw("qa.json", json.dumps({"queries": {"q1": "问"}, "corpus": {"n1": "答。"},
                                          "relevant_docs": {"q1": ["n9"]}})),
         "relevant_docs['q1']: names nodes not in the corpus"),
    Case("MLDR line without positives", "split",
         write_raw("dev.jsonl", jsonl({"query": "q", "positive_passages": []})),
         "dev.jsonl: line 1: 'positive_passages' must be a non-empty list"),
    Case("article naming a missing text file", "split",
         write_raw("articles.json", json.dumps([{"id": "a", "file": "texts/a.txt"}])),
         "articles.json: record [0]: text file 'texts/a.txt' not found"),
    # ------------------------------------------------------------------------------ corrupted intermediates
    Case("corpus cut mid-line", "qa_gen", corrupt("data/corpus.jsonl", '{"id": "x", "doc_id": "d", "te'),
         "data/corpus.jsonl: line 1: invalid JSON", level="done"),
    Case("corpus record without split", "qa_gen",
         corrupt("data/corpus.jsonl", jsonl({"id": "x", "doc_id": "d", "text": "t"})),
         "data/corpus.jsonl: line 1: missing required field(s) ['split']", level="done"),
    Case("pairs from another run", "mine_negatives",
         replace_line("data/pairs/train.jsonl", 1, lambda r: {**r, "pos_ids": ["old.json:9#0"]}),
         "data/pairs/train.jsonl and data/corpus.jsonl do not belong together", level="done"),
    Case("existing pairs from another run", "qa_gen",
         replace_line("data/existing_pairs.jsonl", 1, lambda r: {**r, "pos_ids": ["old.json:9#0"]}),
         "data/existing_pairs.jsonl and data/corpus.jsonl do not belong together", level="done"),
    Case("training file with a wrong type", "train",
         replace_line("data/train.jsonl", 1, lambda r: {**r, "pos_ids": "p1"}),
         "data/train.jsonl: line 1: field 'pos_ids' must be a list of strings", level="done"),
    Case("training examples from another run", "train",
         replace_line("data/train.jsonl", 1, lambda r: {**r, "pos_ids": ["old.json:9#0"]}),
         "data/train.jsonl and data/corpus.jsonl do not belong together", level="done"),
    Case("empty vocab summary", "train", corrupt("results/vocab.json", ""), "results/vocab.json: line 1: invalid JSON",
         level="done"),
    Case("base model folder gone", "mine_negatives", lambda r: shutil.rmtree(r / "models" / "base"),
         "models/base", level="done"),
    Case("fine-tuned model without config", "evaluate", lambda r: (r / "models/finetuned/config.json").unlink(),
         "models/finetuned", level="done", args=("finetuned",)),
    Case("no test pairs", "evaluate", corrupt("data/pairs/test.jsonl", ""), "data/pairs/test.jsonl: no test pairs",
         level="done", args=("bm25",)),
    Case("no val pairs for validation", "train",
         lambda r: (corrupt("data/pairs/val.jsonl", "")(r), set_params(r, train={"eval_every": 2,
                                                                               "checkpoint_every": 2})),
         "data/pairs/val.jsonl: train.eval_every needs val pairs", level="done"),
    Case("a test query seen in training", "evaluate", leak_a_test_query, "leakage: 1 test queries", level="done",
         args=("bm25",)),
    Case("per-query file cut", "report", corrupt("results/per_query/bm25.jsonl", "{"),
         "results/per_query/bm25.jsonl: line 1: invalid JSON", level="done"),
    Case("headline metrics garbage", "publish", corrupt("metrics/finetuned.json", "not json"),
         "metrics/finetuned.json: line 1: invalid JSON", level="done"),
    Case("unknown evaluate target", "evaluate", lambda r: None, "usage: python stages/evaluate.py", level="done",
         args=("nonsense",)),
    Case("extra model not configured", "evaluate", lambda r: None, "eval.extra_models has no model named 'zz'",
         level="done", args=("extra", "zz")),
    # --------------------------------------------------------------------------------- training faults
    Case("temperature too low", "train", params_case(train={"temperature": 1e-45}), "non-finite loss", level="done"),
    Case("LoRA on FlagEmbedding's trainer", "train",
         params_case(train={"backend": "flagembedding", "method": "lora", "hardness_mode": "off"}),
         "train.backend: flagembedding cannot take train.method: lora (it takes full): change them", level="done"),
    Case("attention dropout on FlagEmbedding's trainer", "train",
         params_case(train={"backend": "flagembedding", "attention_dropout": 0.0, "hardness_mode": "off"}),
         "cannot take train.attention_dropout: 0.0 (it takes null): change them", level="done"),
    Case("symmetric InfoNCE on FlagEmbedding's trainer", "train",
         params_case(train={"backend": "flagembedding", "directions": ["query_to_doc", "doc_to_query"]}),
         "cannot take train.directions: ['query_to_doc', 'doc_to_query'] (it takes [query_to_doc]); "
         "train.hardness_mode: in_batch_negatives (it takes off): change them", level="done"),
    Case("the default hardness weighting on FlagEmbedding's trainer", "train",
         params_case(train={"backend": "flagembedding"}),
         "flagembedding cannot take train.hardness_mode: in_batch_negatives (it takes off): change them", level="done"),
    # --------------------------------------------------------------------------------- reranker faults
    Case("reranker switched on but never trained", "evaluate", params_case(rerank={"enabled": True}),
         "models/reranker: no reranker in it, but rerank.enabled is true: run the rerank stage first", level="done",
         args=("finetuned",)),
    Case("reranker without negatives", "rerank",
         params_case(rerank={"enabled": True, "hard_negatives": 0, "random_negatives": 0}),
         "rerank: rerank.hard_negatives and rerank.random_negatives are both 0", level="done"),
    Case("reranker started from a missing folder", "rerank",
         params_case(rerank={"enabled": True, "init": "/nonexistent/reranker"}), "rerank.init", level="done"),
    Case("reranker training file with a wrong type", "rerank",
         lambda r: (replace_line("data/train.jsonl", 1, lambda x: {**x, "neg": "n1"})(r),
                    set_params(r, rerank={"enabled": True})),
         "data/train.jsonl: line 1: field 'neg' must be a list of strings", level="done"),
    Case("LLM prompt without a passage slot", "qa_gen",
         lambda r: ((r / "data" / "prompt.txt").write_text("写{n}个问题"),
                    set_params(r, qa_gen={"sources": ["existing", "llm"], "llm": {"prompt": "data/prompt.txt"}})),
         "prompt.txt: prompt template must contain {passage}", level="done"),
    Case("LLM endpoint down, no other train pairs", "qa_gen",
         params_case(qa_gen={"sources": ["llm"], "llm": {"base_url": "http://127.0.0.1:9/v1", "max_retries": 0,
                                                          "timeout_s": 1}}),
         "qa-gen produced no train and no test pairs", level="done"),
]


@pytest.fixture(scope="module")
def projects(tmp_path_factory, tiny_model_dir):
    """A raw project and a finished one (every stage run), copied for each case."""
    from bgetune.params import load_params

    raw = write_project(tmp_path_factory.mktemp("raw"), tiny_model_dir)
    done = write_project(tmp_path_factory.mktemp("done"), tiny_model_dir)
    params = load_params(done / "params.yaml")
    run_steps(done, params, ("split", "qa_gen", "vocab", "mine_negatives", "train", "rerank", "merge"))
    from bgetune.steps import evaluate

    for name in ("base", "finetuned", "merged", "bm25"):
        evaluate.run(params, name, done, progress=False)
    run_steps(done, params, ("report", "publish"))
    return {"raw": raw, "done": done}


def test_there_are_at_least_sixty_cases():
    assert len(CASES) >= 60 and len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_each_fault_stops_with_one_clear_line_changes_nothing_and_recovers(case, projects, tmp_path):
    root = copy_project(projects[case.level], tmp_path / "p")
    pristine = copy_project(projects[case.level], tmp_path / "pristine")
    case.break_it(root)
    before = snapshot(root)
    outcome = run_stage(root, case.stage, *case.args, env=case.env)
    assert isinstance(outcome, str), f"expected a one-line error, the stage exited {outcome!r}"
    assert "\n" not in outcome and "Traceback" not in outcome, outcome
    assert case.message in outcome, outcome
    assert snapshot(root) == before, "the failed stage changed or half-wrote an output"
    assert not (root / ".bgetune" / "staging").exists() or not any((root / ".bgetune" / "staging").iterdir())
    # Fixed (the project as it was), the same stage runs through.
    if case.fix:
        case.fix(root)
    else:
        shutil.rmtree(root)
        copy_project(pristine, root)
    args = case.args if case.args and case.args[0] in ("base", "finetuned", "merged", "bm25") else \
        (("bm25",) if case.stage == "evaluate" else ())
    assert run_stage(root, case.stage, *args) == 0


@pytest.mark.parametrize("case_id", ["unknown key", "path traversal in a file field", "training file with a wrong type"])
def test_the_command_line_prints_one_line_and_no_traceback(case_id, projects, tmp_path):
    case = next(c for c in CASES if c.id == case_id)
    root = with_stages(copy_project(projects[case.level], tmp_path / "p"))
    case.break_it(root)
    done = subprocess.run([sys.executable, f"stages/{case.stage}.py", *case.args], cwd=root, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 1 and "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert case.message in last and last.startswith("[")


def with_stages(root: Path) -> Path:
    """The stage scripts, for running them as programs in the project."""
    shutil.copytree(REPO / "stages", root / "stages", dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    return root


# ------------------------------------------------------------------------ half-written outputs and kills
def test_an_uncommitted_output_set_is_discarded_at_the_next_start(projects, tmp_path):
    from bgetune.outputs import StageOutputs

    root = copy_project(projects["done"], tmp_path / "p")
    before = snapshot(root)
    staging = StageOutputs("split", ["data/corpus.jsonl"], root).__enter__()
    staging.path("data/corpus.jsonl").parent.mkdir(parents=True)
    staging.path("data/corpus.jsonl").write_text("half")                      # killed before the commit
    (root / "data" / "llm_cache" / "ab").mkdir(parents=True)
    (root / "data" / "llm_cache" / "ab" / ".entry.json.x1.tmp").write_text("half")
    assert run_stage(root, "qa_gen") == 0
    assert snapshot(root)["data/corpus.jsonl"] == before["data/corpus.jsonl"]
    assert not (root / ".bgetune" / "staging" / "split").exists()
    assert not list((root / "data" / "llm_cache").rglob("*.tmp"))              # leftovers of a kill removed


def test_a_committed_output_set_killed_between_renames_is_completed(projects, tmp_path):
    from bgetune.outputs import StageOutputs

    root = copy_project(projects["done"], tmp_path / "p")
    out = StageOutputs("split", ["data/corpus.jsonl", "data/splits.json"], root)
    out.__enter__()
    (out.path("data/corpus.jsonl")).parent.mkdir(parents=True, exist_ok=True)
    out.path("data/corpus.jsonl").write_text((root / "data/corpus.jsonl").read_text())
    out.path("data/splits.json").parent.mkdir(parents=True, exist_ok=True)
    out.path("data/splits.json").write_text('{"new": true}\n')
    # Commit the journal, then "die" after the first rename only.
    moves = [[str(out.path(t)), str(root / t), str(out.staging / "old" / str(i))]
             for i, t in enumerate(["data/corpus.jsonl", "data/splits.json"])]
    (out.staging / "journal.json").write_text(json.dumps({"stage": "split", "moves": moves}))
    first_new, first_target, first_old = map(Path, moves[0])
    first_old.parent.mkdir(parents=True, exist_ok=True)
    os.replace(first_target, first_old)
    os.replace(first_new, first_target)
    assert json.loads((root / "data/splits.json").read_text()) != {"new": True}   # the mixed state a kill leaves
    assert run_stage(root, "qa_gen") == 0                                          # next start: completed
    assert json.loads((root / "data/splits.json").read_text()) == {"new": True}
    assert not (root / ".bgetune" / "staging" / "split").exists()


def train_args(root: Path) -> list[str]:
    return [sys.executable, "stages/train.py"]


def kill_when(root: Path, ready: Callable[[], bool], timeout: float = 300) -> None:
    """Start the train stage, kill -9 it once ``ready()``; the stage must not have finished."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen(train_args(root), cwd=root, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + timeout
    try:
        while time.time() < deadline and process.poll() is None and not ready():
            time.sleep(0.05)
        assert process.poll() is None, "the stage finished before it could be killed"
        os.killpg(process.pid, signal.SIGKILL)
    finally:
        process.wait(30)


@pytest.mark.integration
@pytest.mark.parametrize("moment", ["after a checkpoint", "while writing a checkpoint", "in stage 2"])
def test_kill_minus_nine_then_a_rerun_ends_with_the_weights_of_an_uninterrupted_run(moment, projects, tmp_path):
    """With validation and keep-best on (and a second stage), wherever the kill lands."""
    from safetensors.torch import load_file

    sections = {"train": {"epochs": 6, "eval_every": 2, "checkpoint_every": 2, "keep_best": True, "lr": 1e-3,
                          "stage2": {"enabled": True, "epochs": 2}}}
    straight = copy_project(projects["done"], tmp_path / "straight", **sections)
    killed = with_stages(copy_project(projects["done"], tmp_path / "killed", **sections))
    for root in (straight, killed):
        (root / "data" / "stage2" / "labelled.jsonl").write_text(jsonl(
            {"query": "which red cat", "pos": ["the red cat is here"], "neg": ["nothing"]},
            {"query": "which blue dog", "pos": ["the blue dog is here"], "neg": ["nothing"]}))
    assert run_stage(straight, "train") == 0
    for output in ("models/finetuned", "results/train.json", "results/train_log"):   # as `dvc repro` does
        shutil.rmtree(killed / output) if (killed / output).is_dir() else (killed / output).unlink()
    trainer = killed / "models" / "checkpoints" / "train" / "stage1" / "trainer"
    if moment == "in stage 2":
        kill_when(killed, lambda: (killed / "models" / "checkpoints" / "train" / "stage2" / "trainer").exists())
    else:
        kill_when(killed, lambda: (trainer / "checkpoint-4" / "trainer_state.json").exists())
    if moment == "while writing a checkpoint":
        # The Trainer writes trainer_state.json last: a kill while writing leaves a checkpoint without it.
        (trainer / "checkpoint-4" / "trainer_state.json").unlink()
        (trainer / "checkpoint-4" / "optimizer.pt").write_bytes(b"half")
    assert not (killed / "models" / "finetuned").exists()
    assert run_stage(killed, "train") == 0
    a = load_file(str(straight / "models" / "finetuned" / "model.safetensors"))
    b = load_file(str(killed / "models" / "finetuned" / "model.safetensors"))
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    summaries = [json.loads((r / "results" / "train.json").read_text())["stage1"] for r in (straight, killed)]
    assert summaries[1]["loss_curve"] == summaries[0]["loss_curve"]       # the curve keeps the steps before the kill
    assert summaries[1]["first_loss"] == summaries[0]["first_loss"]
    assert summaries[1]["validation"]["best_step"] == summaries[0]["validation"]["best_step"]


def fill_the_disk_at(limit_bytes: int):
    def limit():
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)     # a write past the limit then fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))
    return limit


@pytest.mark.integration
def test_a_full_disk_while_checkpointing_says_so_cleans_up_and_a_rerun_finishes(projects, tmp_path):
    root = with_stages(copy_project(projects["done"], tmp_path / "p", train={"checkpoint_every": 2, "epochs": 3}))
    done = subprocess.run([sys.executable, "stages/train.py"], cwd=root, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, preexec_fn=fill_the_disk_at(200_000))
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert "no space left while writing a checkpoint" in done.stderr.strip().splitlines()[-1]
    trainer = root / "models" / "checkpoints" / "train" / "stage1" / "trainer"
    assert not [p for p in trainer.glob("checkpoint-*") if not (p / "trainer_state.json").exists()]
    assert run_stage(root, "train") == 0 and (root / "models" / "finetuned" / "model.safetensors").exists()


@pytest.mark.integration
def test_a_full_disk_while_writing_outputs_leaves_the_old_ones(projects, tmp_path):
    root = with_stages(copy_project(projects["done"], tmp_path / "p", chunk={"max_chars": 30}))
    before = snapshot(root)
    done = subprocess.run([sys.executable, "stages/split.py"], cwd=root, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, preexec_fn=fill_the_disk_at(1_000))
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert "no space left while writing" in done.stderr.strip().splitlines()[-1]
    assert snapshot(root) == before and not any((root / ".bgetune" / "staging").glob("*"))


def test_short_groups_are_counted_not_repeated(projects, tmp_path):
    root = copy_project(projects["done"], tmp_path / "p", train={"train_group_size": 12})
    assert run_stage(root, "train") == 0
    summary = json.loads((root / "results" / "train.json").read_text())["stage1"]
    assert summary["groups_short_of_negatives"] == summary["examples"] > 0


def test_gzip_helper_round_trip(tmp_path):
    """(The reader under test above reads .gz files through records.read_bytes.)"""
    from bgetune.records import read_text

    path = tmp_path / "a.txt.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write("内容")
    assert read_text(path) == "内容"
