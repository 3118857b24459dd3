import pytest

from bgetune.records import InputError, Passage, atomic_open, read_jsonl, read_passages, write_jsonl


def test_roundtrip_passages(tmp_path):
    path = tmp_path / "corpus.jsonl"
    written = [Passage(id="d#0", doc_id="d", text="第一段。", split="train", title="标题")]
    assert write_jsonl(path, written) == 1
    assert read_passages(path) == written


def test_malformed_line_names_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"a": 1}\n\n{"a": 2,\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"bad.jsonl: line 3: invalid JSON"):
        list(read_jsonl(path))


def test_missing_required_field_names_line(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_text('{"id": "a", "doc_id": "d", "text": "x", "split": "train"}\n{"id": "b", "doc_id": "d"}\n')
    with pytest.raises(InputError, match=r"line 2: missing required field\(s\) \['text', 'split'\]"):
        read_passages(path)


def test_non_utf8_file_names_line(tmp_path):
    path = tmp_path / "gbk.jsonl"
    path.write_bytes('{"text": "ok"}\n'.encode() + '{"text": "中文"}\n'.encode("gbk"))
    with pytest.raises(InputError, match=r"gbk.jsonl: line 2: not valid utf-8"):
        list(read_jsonl(path))


def test_atomic_write_leaves_nothing_half_written(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text("old\n")
    with pytest.raises(RuntimeError):
        with atomic_open(path) as handle:
            handle.write("partial")
            raise RuntimeError("killed")
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]
