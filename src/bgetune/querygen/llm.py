"""LLM query generation against any OpenAI-compatible chat endpoint (Ollama, vLLM, DeepSeek, Qwen/DashScope).

One request per passage asks for ``n`` queries. Replies are cached on disk per (model, prompt template, passage) as
soon as they arrive, so a killed run resumes without asking again, and a re-run with the same params asks nothing.
Transport failures (timeouts, 429, 5xx, a body that is not JSON) are retried with exponential backoff; a reply whose
text holds no queries is asked again up to ``parse_retries`` times, then the passage is counted as failed — never
written as a query. Kept queries pass the filters (dedupe, length, language, round trip), each counted.

Example::

    pairs, report = llm_pairs(passages, [], params.qa_gen, seed=42, lexical=params.lexical)
    report["requests"], report["cache_hits"], report["filtered"]   # what it cost and what it dropped
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import re
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from bgetune.dedup import normalise
from bgetune.querygen.prompts import SYSTEM, TEMPLATES, render
from bgetune.records import InputError, Pair, atomic_open

log = logging.getLogger("bgetune")

_FENCE = re.compile(r"```[a-zA-Z]*\s*\n?(.*?)```", re.S)
_MARKER = re.compile(r"^\s*(?:[-*•·]+|\d{1,2}\s*[.、．)）:：]|[（(]\d{1,2}[)）]|Q\d*\s*[:：.]|问题\s*\d*\s*[:：])\s*")
_PROSE_START = ("以下", "下面", "这里", "好的", "当然", "here are", "here is", "sure", "certainly", "queries:", "查询：")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")
_DROP_CHARS = "\"'“”‘’「」`*"


class LlmError(RuntimeError):
    """A request that failed after every retry, or a reply that was never parseable."""


class LlmConfigError(InputError):
    """The endpoint refuses us for a reason retrying cannot fix (bad key, unknown model, wrong URL)."""


@dataclass
class ChatClient:
    """Minimal OpenAI-compatible chat-completions client (stdlib only) with timeouts and backoff.

    Example::

        client = ChatClient("http://127.0.0.1:11434/v1", "qwen2.5:7b")
        text = client.complete([{"role": "user", "content": "你好"}])
    """

    base_url: str
    model: str
    api_key: str | None = None
    timeout_s: float = 60.0
    max_retries: int = 4
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0
    temperature: float = 0.7
    max_tokens: int = 512
    max_reply_bytes: int = 65536
    stats: Counter = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.stats[key] += n

    def complete(self, messages: list[dict]) -> str:
        body = json.dumps({"model": self.model, "messages": messages, "temperature": self.temperature,
                           "max_tokens": self.max_tokens, "stream": False}).encode("utf-8")
        url = self.base_url.rstrip("/") + "/chat/completions"
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last = "no attempt"
        for attempt in range(self.max_retries + 1):
            if attempt:
                self._count("retries")
            self._count("requests")
            wait = None
            try:
                request = urllib.request.Request(url, data=body, headers=headers, method="POST")
                with _OPENER.open(request, timeout=self.timeout_s) as response:
                    # A reply longer than the cap is cut (an endpoint gone wrong must not fill memory or the cache).
                    raw = response.read(self.max_reply_bytes + 1)
                if len(raw) > self.max_reply_bytes:
                    self._count("replies_cut")
                    raw = raw[:self.max_reply_bytes]
                try:
                    return json.loads(raw)["choices"][0]["message"]["content"] or ""
                except (ValueError, KeyError, IndexError, TypeError):
                    self._count("bad_response_body")
                    last = "reply body is not an OpenAI chat-completions JSON"
            except _Redirect as err:
                # The key travels in a header: it goes only to qa_gen.llm.base_url, never where a reply points.
                raise LlmConfigError(f"{url}: the endpoint answered HTTP {err.code}, a redirect to {err.target}; "
                                     "bgetune does not follow redirects (the API key would go with them): set "
                                     "qa_gen.llm.base_url to the endpoint's final address") from None
            except urllib.error.HTTPError as err:
                self._count(f"http_{err.code}")
                if err.code in (401, 403, 404):
                    # Never echo the key: name the variable it came from in the caller's message instead.
                    raise LlmConfigError(f"{url}: HTTP {err.code} {err.reason} (check qa_gen.llm.base_url, model "
                                         f"{self.model!r} and the API key variable)") from None
                last = f"HTTP {err.code}"
                retry_after = err.headers.get("Retry-After") if err.headers else None
                if retry_after:
                    try:
                        wait = min(float(retry_after), self.max_backoff_s)
                    except ValueError:
                        wait = None
            except (TimeoutError, OSError) as err:   # socket timeouts and refused connections are OSErrors
                self._count("timeouts" if "timed out" in str(err) else "connection_errors")
                last = f"{type(err).__name__}: {err}"
            if attempt < self.max_retries:
                delay = wait if wait is not None else min(self.backoff_s * 2 ** attempt, self.max_backoff_s)
                time.sleep(delay * (1 + 0.1 * random.random()))
        raise LlmError(f"{url}: gave up after {self.max_retries + 1} attempts ({last})")


class _Redirect(Exception):
    def __init__(self, code: int, target: str):
        super().__init__(code, target)
        self.code, self.target = code, target


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Refuse every redirect: urllib would re-send the Authorization header to wherever it points."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        raise _Redirect(code, newurl)


_OPENER = urllib.request.build_opener(_NoRedirects)


def parse_queries(text: str) -> list[str]:
    """Queries from a reply: JSON (a list, or an object with a list), else lines with numbering and bullets removed;
    code fences and lead-in prose ("以下是…", "Here are…") are ignored."""
    fenced = _FENCE.findall(text)
    body = "\n".join(fenced) if fenced else text
    stripped = body.strip()
    if stripped[:1] in "[{":
        try:
            data = json.loads(stripped)
        except ValueError:
            data = None
        if isinstance(data, dict):
            data = next((v for v in data.values() if isinstance(v, list)), None)
        if isinstance(data, list):
            return [q for q in (_clean(str(item)) for item in data if isinstance(item, (str, int, float))) if q]
    lines = [line for line in body.splitlines() if line.strip()]
    marked = [line for line in lines if _MARKER.match(line)]
    chosen = marked if marked else lines
    queries = []
    for line in chosen:
        query = _clean(_MARKER.sub("", line, count=1))
        lowered = query.lower()
        if not query or lowered.startswith(_PROSE_START) or query.endswith((":", "：")):
            continue
        queries.append(query)
    return queries


def _clean(text: str) -> str:
    return text.strip().strip(_DROP_CHARS).strip()


def language_ok(query: str, language: str, min_ratio: float) -> bool:
    letters = len(_CJK.findall(query)) + len(_LATIN.findall(query))
    if not letters:
        return False
    share = len((_CJK if language == "zh" else _LATIN).findall(query)) / letters
    return share >= min_ratio


def cache_key(base_url: str, model: str, template: str, system: str, passage: str, n: int, temperature: float,
              max_tokens: int) -> str:
    """Everything that shapes a reply: the endpoint, the model, the prompt, the passage and every generation
    param (a reply from another endpoint or with other limits is not this request's reply)."""
    payload = json.dumps([base_url.rstrip("/"), model, template, system,
                          hashlib.sha256(passage.encode("utf-8")).hexdigest(), n, temperature, max_tokens],
                         ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class ReplyCache:
    """One small JSON file per key, written atomically: safe under threads and against a kill mid-run."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict | None:
        path = self._path(key)
        if not path.exists():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            return None   # an unreadable entry is asked again, never trusted

    def put(self, key: str, value: dict) -> None:
        with atomic_open(self._path(key)) as handle:
            json.dump(value, handle, ensure_ascii=False)


def llm_pairs(passages, pairs, qa_params, seed: int, progress: bool = True, client: ChatClient | None = None,
              device: str = "auto", lexical=None) -> tuple[list[Pair], dict]:
    """Generate queries for the passages of ``qa_params.llm.splits``; see the module docstring. ``lexical``:
    params.lexical, the BM25 of the round-trip check (None: its defaults)."""
    params = qa_params.llm
    started = time.perf_counter()
    template, language = _template(params)
    system = SYSTEM.get(language, SYSTEM["en"])
    if client is None:
        client = ChatClient(params.base_url, params.model, _api_key(params), params.timeout_s, params.max_retries,
                            params.backoff_s, params.max_backoff_s, params.temperature, params.max_tokens,
                            params.max_reply_bytes)
    chosen = [p for p in passages if p.split in params.splits]
    if params.max_passages and len(chosen) > params.max_passages:
        chosen = sorted(random.Random(seed).sample(chosen, params.max_passages), key=lambda p: passages.index(p))
    cache = ReplyCache(params.cache_dir)
    counts = Counter()
    counts_lock = threading.Lock()

    def work(passage) -> tuple[list[str] | None, str]:
        key = cache_key(params.base_url, params.model, template, system, passage.text, params.queries_per_passage,
                        params.temperature, params.max_tokens)
        cached = cache.get(key)
        if cached is not None and cached.get("queries"):
            return cached["queries"], "cache"
        prompt = render(template, language, passage.text, passage.title, params.queries_per_passage)
        messages = [{"role": "system", "content": system}, {"role": "user", "content": prompt}]
        for attempt in range(params.parse_retries + 1):
            reply = client.complete(messages)
            queries = parse_queries(reply)
            if queries:
                if len(queries) > params.queries_per_passage:
                    with counts_lock:
                        counts["queries_beyond_queries_per_passage"] += len(queries) - params.queries_per_passage
                    queries = queries[:params.queries_per_passage]
                # Only replies that gave queries are cached (a failure is asked again on the next run), and only
                # what they gave: the cache does not grow with a runaway reply.
                cache.put(key, {"queries": queries, "reply_excerpt": reply[:2000]})
                return queries, "asked"
            with counts_lock:
                counts["unparseable_replies"] += 1
        return None, "unparseable"

    from tqdm.auto import tqdm

    results: dict[int, list[str] | None] = {}
    outcome = Counter()
    with ThreadPoolExecutor(max_workers=params.concurrency) as pool:
        futures = {pool.submit(work, p): i for i, p in enumerate(chosen)}
        for future in tqdm(as_completed(futures), total=len(futures), desc="llm queries", disable=not progress):
            i = futures[future]
            try:
                queries, how = future.result()
            except LlmConfigError:
                for other in futures:
                    other.cancel()
                raise
            except LlmError as err:
                log.warning("llm: passage %s failed: %s", chosen[i].id, err)
                queries, how = None, "request_failed"
            results[i] = queries
            outcome[how] += 1

    pairs_out, filtered, seen = [], Counter(), set()
    roundtrip = _RoundTrip(passages, params, device, lexical) if params.roundtrip != "off" else None
    candidates = []
    for i, passage in enumerate(chosen):
        for rank, query in enumerate(results.get(i) or []):
            reason = _filter_reason(query, passage.text, params, language, seen)
            if reason:
                filtered[reason] += 1
                continue
            seen.add(normalise(query))
            candidates.append((passage, rank, query))
    keep = roundtrip.check([(p.id, q) for p, _, q in candidates]) if roundtrip else [True] * len(candidates)
    for (passage, rank, query), ok in zip(candidates, keep):
        if not ok:
            filtered["roundtrip_miss"] += 1
            continue
        pairs_out.append(Pair(qid=f"llm:{passage.id}:{rank}", query=query, pos_ids=[passage.id], source="llm",
                              split=passage.split))
    with_queries = {p.pos_ids[0] for p in pairs_out}
    generated = sum(len(q or []) for q in results.values())
    report = {
        "endpoint_model": params.model, "language": language,
        "passages": len(chosen), "passages_with_queries": len(with_queries),
        "passages_failed": {"request_failed": outcome["request_failed"], "unparseable": outcome["unparseable"]},
        "passages_all_queries_filtered": sum(1 for i, p in enumerate(chosen)
                                             if results.get(i) and p.id not in with_queries),
        "queries_generated": generated, "queries_kept": len(pairs_out), "filtered": dict(sorted(filtered.items())),
        "requests": client.stats["requests"], "retries": client.stats["retries"],
        "cache_hits": outcome["cache"], "unparseable_replies": counts["unparseable_replies"],
        "queries_beyond_queries_per_passage": counts["queries_beyond_queries_per_passage"],
        "transport": {k: v for k, v in sorted(client.stats.items()) if k not in ("requests", "retries")},
        "seconds": round(time.perf_counter() - started, 2),
    }
    log.info("llm: %d passages → %d queries kept (%d generated); %d requests, %d retries, %d cache hits; "
             "filtered %s; failed %s", len(chosen), len(pairs_out), generated, report["requests"], report["retries"],
             report["cache_hits"], report["filtered"], report["passages_failed"])
    return pairs_out, report


def _template(params) -> tuple[str, str]:
    if params.prompt in TEMPLATES:
        return TEMPLATES[params.prompt], params.prompt
    path = Path(params.prompt)
    if not path.is_file():
        raise InputError(f"qa_gen.llm.prompt: {params.prompt!r} is neither a shipped template "
                         f"({sorted(TEMPLATES)}) nor a file")
    text = path.read_text(encoding="utf-8")
    for slot in ("{passage}", "{n}"):
        if slot not in text:
            raise InputError(f"{path}: prompt template must contain {slot}")
    return text, params.language


def _api_key(params) -> str | None:
    if not params.api_key_env:
        return None
    key = os.environ.get(params.api_key_env)
    if not key:
        raise InputError(f"qa_gen.llm.api_key_env: environment variable {params.api_key_env} is not set "
                         "(keys are read from the environment only, never from params.yaml)")
    return key


def _filter_reason(query: str, passage: str, params, language: str, seen: set) -> str | None:
    if len(query) < params.min_chars:
        return "too_short"
    if len(query) > params.max_chars:
        return "too_long"
    if not language_ok(query, language, params.min_language_ratio):
        return "wrong_language"
    key = normalise(query)
    if not key:
        return "too_short"
    if len(key) >= 0.8 * len(normalise(passage)):
        return "copies_passage"
    if key in seen:
        return "duplicate"
    return None


class _RoundTrip:
    """Does the query find its own passage in the top k? (BM25 over the whole corpus, or the base model.)"""

    def __init__(self, passages, params, device: str = "auto", lexical=None):
        self.index_of = {p.id: i for i, p in enumerate(passages)}
        self.texts = [p.text for p in passages]
        self.params, self.device, self.lexical = params, device, lexical

    def check(self, queries: list[tuple[str, str]]) -> list[bool]:
        if not queries:
            return []
        k = self.params.roundtrip_k
        texts = [q for _, q in queries]
        if self.params.roundtrip == "bm25":
            from bgetune.lexical import BM25Index

            indices, _ = BM25Index(self.texts, self.lexical).search(texts, k)
        else:
            from bgetune.device import resolve_device, resolve_precision
            from bgetune.models import load_model, query_instruction_for
            from bgetune.search import encode, top_k

            reference = self.params.roundtrip_model
            device = resolve_device(self.device)
            precision = resolve_precision("auto", device)
            model = load_model(reference, device=device, key="qa_gen.llm.roundtrip_model")
            instruction = query_instruction_for(reference, "auto")
            queries = encode(model, texts, 32, instruction, False, kind="query", precision=precision)
            corpus = encode(model, self.texts, 32, progress=False, kind="document", precision=precision)
            _, indices = top_k(queries, corpus, k, device=device)
            indices = indices.tolist()
        return [self.index_of[pid] in set(row) for (pid, _), row in zip(queries, indices)]
