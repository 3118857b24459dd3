import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from bm25_tokens import parse_setting, setting_name  # noqa: E402

from bgetune.params import LexicalParams  # noqa: E402


def test_settings_read_as_lexical_sections_with_the_defaults_filled_in():
    assert parse_setting("words:1.5:0.75") == {"tokens": "words", "k1": 1.5, "b": 0.75}
    assert parse_setting("cjk_bigrams") == LexicalParams().model_dump()
    assert parse_setting("cjk_bigrams:0.9") == {"tokens": "cjk_bigrams", "k1": 0.9, "b": 0.75}
    assert setting_name(parse_setting("words:1.5:0.75")) == "words_k1_1.5_b_0.75"
