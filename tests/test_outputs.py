"""A stage's outputs appear together or not at all."""
import pytest

from bgetune.outputs import StageOutputs, recover
from bgetune.records import write_json


def test_outputs_appear_together_only_when_the_stage_finishes(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.json").write_text("old a")
    with StageOutputs("s", ["data/a.json", "data/b.json", "models/m"], tmp_path) as out:
        write_json(out.path("data/a.json"), {"new": "a"})
        write_json(out.path("data/b.json"), {"new": "b"})
        out.path("models/m").mkdir(parents=True)
        (out.path("models/m") / "w.safetensors").write_text("weights")
        assert (tmp_path / "data" / "a.json").read_text() == "old a"        # nothing moves before the end
        assert not (tmp_path / "data" / "b.json").exists()
    assert '"new": "a"' in (tmp_path / "data" / "a.json").read_text()
    assert (tmp_path / "models" / "m" / "w.safetensors").read_text() == "weights"
    assert not (tmp_path / ".bgetune" / "staging" / "s").exists()


def test_a_failing_stage_changes_nothing(tmp_path):
    (tmp_path / "a.json").write_text("old")
    with pytest.raises(RuntimeError):
        with StageOutputs("s", ["a.json", "b.json"], tmp_path) as out:
            write_json(out.path("a.json"), {"new": 1})
            raise RuntimeError("boom")
    assert (tmp_path / "a.json").read_text() == "old" and not (tmp_path / "b.json").exists()
    assert recover(tmp_path) == []


def test_an_output_the_stage_forgot_is_an_error_and_nothing_moves(tmp_path):
    with pytest.raises(RuntimeError, match="did not write its output b.json"):
        with StageOutputs("s", ["a.json", "b.json"], tmp_path) as out:
            write_json(out.path("a.json"), {"new": 1})
    assert not (tmp_path / "a.json").exists()


def test_only_declared_outputs_can_be_written(tmp_path):
    with StageOutputs("s", ["a.json"], tmp_path) as out:
        with pytest.raises(KeyError, match="not a declared output"):
            out.path("c.json")
        write_json(out.path("a.json"), {})


def test_written_files_are_readable_by_others(tmp_path):
    write_json(tmp_path / "x.json", {})
    assert (tmp_path / "x.json").stat().st_mode & 0o044 == 0o044
