"""LLM query generation against a real local HTTP server that speaks the OpenAI chat API and injects faults."""
import json
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bgetune.params import LlmParams, QaGenParams
from bgetune.querygen.llm import ChatClient, LlmConfigError, llm_pairs, parse_queries
from bgetune.records import InputError, Passage

TOPICS = ["冰箱冷藏温度", "洗衣机滤网清洁", "空调制冷不足", "热水器水垢", "油烟机噪音", "净水器滤芯更换",
          "电饭煲内胆涂层", "微波炉加热不均", "扫地机器人回充", "电视遥控失灵", "加湿器白雾", "吸尘器吸力下降"]


class FakeChat(ThreadingHTTPServer):
    """Replies by the fault marker in the passage: first attempt fails (or always fails), later attempts succeed."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.requests = Counter()        # passage number -> requests received
        self.answered = 0
        self.answered_event = threading.Event()
        self.block_after = None          # stop answering after this many good replies (to kill the client)
        self.release = threading.Event()
        self.delay = 0.0
        self.lock = threading.Lock()
        self.redirect_to = ""
        self.authorizations = []         # the Authorization headers this server received

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        server: FakeChat = self.server
        server.authorizations.append(self.headers.get("Authorization"))
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        assert self.path == "/v1/chat/completions" and body["model"] == "fake-model"
        prompt = body["messages"][-1]["content"]
        number = int(re.search(r"编号(\d+)", prompt).group(1))
        topic = re.search(r"内容：\n(.+?)的处理方法", prompt).group(1)
        fault = re.search(r"\[(\w+)\]", prompt).group(1)
        with server.lock:
            server.requests[number] += 1
            attempt = server.requests[number]
            if server.block_after is not None and server.answered >= server.block_after:
                blocked = True
            else:
                blocked = False
        if blocked:
            server.release.wait(30)
        if server.delay:
            time.sleep(server.delay)
        good = f"以下是查询：\n1. {topic}怎么办？\n2. {topic} 处理方法\n3. {topic}怎么办？"
        if fault == "e500" and attempt == 1 or fault == "e500always":
            return self.reply(500, b'{"error": "overloaded"}')
        if fault == "e429" and attempt == 1:
            return self.reply(429, b'{"error": "rate limited"}', {"Retry-After": "0"})
        if fault == "slow" and attempt == 1:
            time.sleep(1.2)
        if fault == "badjson" and attempt == 1:
            return self.reply(200, b'{"choices": [ {"message": ')
        if fault == "prose" and attempt == 1:
            return self.chat("以下是查询：")
        if fault == "prose":
            return self.chat(f'```json\n["{topic}有什么办法", "{topic}的原因"]\n```')
        if fault == "never":
            return self.chat("好的，我明白了：")
        if fault == "english":
            return self.chat("1. how to fix it\n2. what is wrong")
        if fault == "redirect":
            return self.reply(302, b"", {"Location": server.redirect_to})
        if fault == "manylines":
            return self.chat("\n".join(f"{i + 1}. {topic}问题{i}怎么办" for i in range(200)))
        if fault == "huge":
            return self.chat("1. " + topic + "怎么办\n" + "长" * 10_000_000)
        with server.lock:
            server.answered += 1
            server.answered_event.set()
        return self.chat(good)

    def chat(self, content):
        payload = {"id": "x", "object": "chat.completion", "model": "fake-model",
                   "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                "finish_reason": "stop"}]}
        self.reply(200, json.dumps(payload, ensure_ascii=False).encode("utf-8"))

    def reply(self, status, data, headers=None):
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass   # the client timed out and left: exactly what the slow fault tests


def serving():
    chat = FakeChat()
    threading.Thread(target=chat.serve_forever, daemon=True).start()
    yield chat
    chat.release.set()
    chat.shutdown()
    chat.server_close()


@pytest.fixture
def server():
    yield from serving()


def passages_with(faults):
    return [Passage(id=f"p{i}", doc_id=f"d{i}", split="train",
                    text=f"{TOPICS[i]}的处理方法：先检查{TOPICS[i]}相关的部件，再按说明书操作。编号{i}。[{fault}]")
            for i, fault in enumerate(faults)]


def qa_params(url, cache_dir, **llm):
    settings = dict(base_url=url, model="fake-model", concurrency=3, timeout_s=0.6, max_retries=2, backoff_s=0.01,
                    parse_retries=1, cache_dir=str(cache_dir), roundtrip="bm25", roundtrip_k=2)
    settings.update(llm)
    return QaGenParams(sources=["llm"], llm=LlmParams(**settings))


FAULTS = ["ok", "e500", "e429", "slow", "badjson", "prose", "never", "e500always", "english"]


def test_faults_are_retried_and_every_passage_ends_with_queries_or_counted_as_failed(server, tmp_path):
    passages = passages_with(FAULTS)
    pairs, report = llm_pairs(passages, [], qa_params(server.url, tmp_path / "cache"), seed=0, progress=False)
    by_passage = {}
    for pair in pairs:
        by_passage.setdefault(pair.pos_ids[0], []).append(pair.query)
    # Transient faults recover; the permanent ones are counted, never written as queries.
    assert set(by_passage) == {"p0", "p1", "p2", "p3", "p4", "p5"}
    assert by_passage["p0"] == ["冰箱冷藏温度怎么办？", "冰箱冷藏温度 处理方法"]      # lead-in prose and the repeat gone
    assert by_passage["p5"] == ["净水器滤芯更换有什么办法", "净水器滤芯更换的原因"]              # the fenced JSON retry
    assert report["passages_failed"] == {"request_failed": 1, "unparseable": 1}
    assert report["passages_all_queries_filtered"] == 1                                 # the English replies
    assert report["passages_with_queries"] + 2 + 1 == report["passages"] == len(FAULTS)
    assert report["filtered"] == {"duplicate": 5, "wrong_language": 2}
    assert report["unparseable_replies"] == 3                                           # prose once, never twice
    # Requests the server saw: one retry per transient fault, the parse retries, and 3 attempts for e500always.
    assert dict(server.requests) == {0: 1, 1: 2, 2: 2, 3: 2, 4: 2, 5: 2, 6: 2, 7: 3, 8: 1}
    assert report["requests"] == 17 and report["retries"] == 6
    assert report["transport"]["http_500"] == 4 and report["transport"]["http_429"] == 1
    assert report["transport"]["timeouts"] == 1 and report["transport"]["bad_response_body"] == 1
    assert all(p.source == "llm" and p.split == "train" for p in pairs)

    # The same params again: every reply that gave queries comes from the cache; the failures (the transport
    # failure, the reply that never parsed) are not cached, so a fixed endpoint would be asked again.
    server.requests.clear()
    again, report2 = llm_pairs(passages, [], qa_params(server.url, tmp_path / "cache"), seed=0, progress=False)
    assert [(p.qid, p.query) for p in again] == [(p.qid, p.query) for p in pairs]
    assert dict(server.requests) == {7: 3, 6: 2} and report2["cache_hits"] == len(FAULTS) - 2


def test_killed_run_resumes_without_asking_again(server, tmp_path):
    faults = ["ok"] * 12
    passages = passages_with(faults)
    params = qa_params(server.url, tmp_path / "cache", concurrency=1, timeout_s=30)
    server.block_after = 5
    script = (
        "import json, sys\n"
        "from bgetune.params import QaGenParams\n"
        "from bgetune.records import Passage\n"
        "from bgetune.querygen.llm import llm_pairs\n"
        "data = json.loads(sys.argv[1])\n"
        "llm_pairs([Passage(**p) for p in data['passages']], [], QaGenParams(**data['params']), 0, progress=False)\n"
    )
    payload = json.dumps({"passages": [p.__dict__ for p in passages], "params": params.model_dump()},
                         ensure_ascii=False)
    process = subprocess.Popen([sys.executable, "-c", script, payload])
    try:
        deadline = time.time() + 60
        while sum(server.requests.values()) < 6 and time.time() < deadline:
            time.sleep(0.05)
        assert sum(server.requests.values()) == 6      # five answered, the sixth hangs on the server
    finally:
        process.kill()
        process.wait()
    before = Counter(server.requests)
    server.block_after = None
    server.release.set()
    pairs, report = llm_pairs(passages, [], params, seed=0, progress=False)
    asked_again = {n for n in before if server.requests[n] > before[n]}
    assert asked_again <= {n for n in before if before[n] and n not in _answered(before, 5)}
    assert len(asked_again) <= 1                       # only the request that never got its reply
    assert report["cache_hits"] == 5 and report["requests"] == 7
    assert {p.pos_ids[0] for p in pairs} == {p.id for p in passages}
    assert all(count <= 2 for count in server.requests.values())


def _answered(requests, n):
    # concurrency 1: the first n passages asked are the ones answered.
    return set(sorted(requests)[:n])


def test_parse_queries_tolerates_fences_numbering_and_prose():
    assert parse_queries("好的，以下是查询：\n1. 冰箱几度\n2) 冷藏温度多少\n- 冰箱 温度\n希望有帮助") == [
        "冰箱几度", "冷藏温度多少", "冰箱 温度"]
    assert parse_queries('```json\n{"queries": ["a 1", "b 2"]}\n```') == ["a 1", "b 2"]
    assert parse_queries("Q1: what is it?\nQ2: \"how to fix\"") == ["what is it?", "how to fix"]
    assert parse_queries("以下是查询：") == []


def test_unauthorised_stops_with_a_message_that_never_contains_the_key(tmp_path):
    class Deny(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            self.send_response(401)
            self.end_headers()

    deny = ThreadingHTTPServer(("127.0.0.1", 0), Deny)
    threading.Thread(target=deny.serve_forever, daemon=True).start()
    try:
        client = ChatClient(f"http://127.0.0.1:{deny.server_address[1]}/v1", "m", api_key="sk-secret-123")
        with pytest.raises(LlmConfigError) as err:
            client.complete([{"role": "user", "content": "hi"}])
        assert "401" in str(err.value) and "sk-secret" not in str(err.value)
    finally:
        deny.shutdown()
        deny.server_close()


def test_api_key_comes_only_from_the_named_environment_variable(server, tmp_path, monkeypatch):
    monkeypatch.delenv("BGETUNE_TEST_KEY", raising=False)
    params = qa_params(server.url, tmp_path / "cache", api_key_env="BGETUNE_TEST_KEY")
    with pytest.raises(InputError, match="BGETUNE_TEST_KEY is not set"):
        llm_pairs(passages_with(["ok"]), [], params, seed=0, progress=False)
    monkeypatch.setenv("BGETUNE_TEST_KEY", "sk-secret-456")
    pairs, report = llm_pairs(passages_with(["ok"]), [], params, seed=0, progress=False)
    assert pairs and "sk-secret" not in json.dumps(report)


def test_qa_gen_stage_writes_llm_pairs_and_the_summary(server, tmp_path):
    from bgetune.params import params_from_dict
    from bgetune.records import Pair, read_json, read_pairs, write_jsonl
    from bgetune.steps import qa_gen

    passages = passages_with(["ok", "ok", "never"])
    passages.append(Passage(id="t0", doc_id="t", split="test", text="测试集的段落不生成查询。[ok] 编号3。"))
    write_jsonl(tmp_path / "data" / "corpus.jsonl", passages)
    write_jsonl(tmp_path / "data" / "existing_pairs.jsonl",
                [Pair(qid="h1", query="测试集的段落", pos_ids=["t0"], source="existing", split="test")])
    params = params_from_dict({"qa_gen": {**qa_params(server.url, tmp_path / "cache").model_dump(),
                                          "sources": ["existing", "llm"]}})
    summary = qa_gen.run(params, tmp_path, progress=False)
    train = read_pairs(tmp_path / "data" / "pairs" / "train.jsonl")
    assert {p.pos_ids[0] for p in train} == {"p0", "p1"} and all(p.source == "llm" for p in train)
    assert [p.source for p in read_pairs(tmp_path / "data" / "pairs" / "test.jsonl")] == ["existing"]
    llm = read_json(tmp_path / "results" / "qa_gen.json")["sources"]["llm"]
    assert llm["passages"] == 3 and llm["passages_failed"]["unparseable"] == 1
    assert summary["pairs_per_split_and_source"]["train"] == {"llm": 4}


@pytest.fixture
def elsewhere():
    """A second endpoint on another port: where a redirect points."""
    yield from serving()


def test_a_redirect_is_refused_and_the_key_never_leaves_for_another_host(server, elsewhere, tmp_path, monkeypatch):
    monkeypatch.setenv("BGETUNE_TEST_KEY", "sk-secret-789")
    server.redirect_to = elsewhere.url + "/chat/completions"
    params = qa_params(server.url, tmp_path / "cache", api_key_env="BGETUNE_TEST_KEY")
    with pytest.raises(LlmConfigError, match=r"HTTP 302, a redirect to http://127.0.0.1:\d+/v1.*base_url") as err:
        llm_pairs(passages_with(["redirect"]), [], params, seed=0, progress=False)
    assert "sk-secret" not in str(err.value)
    assert elsewhere.authorizations == [] and server.authorizations == ["Bearer sk-secret-789"]


def test_a_long_reply_keeps_only_queries_per_passage_and_the_rest_is_counted(server, tmp_path):
    pairs, report = llm_pairs(passages_with(["manylines"]), [], qa_params(server.url, tmp_path / "cache",
                                                                           roundtrip="off"), seed=0, progress=False)
    # 99 numbered lines parse as queries (numbering of 1–2 digits); 3 are kept, 96 counted.
    assert len(pairs) == 3 and report["queries_beyond_queries_per_passage"] == 96


def test_a_runaway_reply_is_cut_and_not_cached_whole(server, tmp_path):
    params = qa_params(server.url, tmp_path / "cache", roundtrip="off", timeout_s=10, max_retries=0,
                       max_reply_bytes=4096)
    pairs, report = llm_pairs(passages_with(["huge"]), [], params, seed=0, progress=False)
    assert report["transport"]["replies_cut"] >= 1
    assert pairs == [] and report["passages_failed"]["request_failed"] == 1   # cut mid-JSON: not a reply
    cached = sum(p.stat().st_size for p in (tmp_path / "cache").rglob("*") if p.is_file()) \
        if (tmp_path / "cache").exists() else 0
    assert cached < 10_000


def test_the_cache_key_holds_the_endpoint_and_every_generation_param(server, elsewhere, tmp_path):
    passages = passages_with(["ok"])
    llm_pairs(passages, [], qa_params(server.url, tmp_path / "cache"), seed=0, progress=False)
    assert dict(server.requests) == {0: 1}
    llm_pairs(passages, [], qa_params(elsewhere.url, tmp_path / "cache"), seed=0, progress=False)
    assert dict(elsewhere.requests) == {0: 1}                  # another endpoint is asked, not served from cache
    llm_pairs(passages, [], qa_params(server.url, tmp_path / "cache", max_tokens=64), seed=0, progress=False)
    assert dict(server.requests) == {0: 2}                     # another max_tokens too
    llm_pairs(passages, [], qa_params(server.url, tmp_path / "cache"), seed=0, progress=False)
    assert dict(server.requests) == {0: 2}                     # the first request's reply, from the cache
