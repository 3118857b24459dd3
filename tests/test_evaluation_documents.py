from bgetune.evaluation.documents import document_ranking, spans_several_passages

DOC_OF = {"a#0": "a", "a#1": "a", "a#2": "a", "b#0": "b", "c#0": "c", "c#1": "c"}


def test_a_document_ranks_where_its_best_passage_ranks():
    assert document_ranking(["a#2", "b#0", "a#0", "c#1"], None, DOC_OF, "max") == ["a", "b", "c"]


def test_sum_adds_a_documents_passages_and_first_keeps_only_first_passages():
    ranked, scores = ["b#0", "a#1", "a#2", "c#0"], [0.9, 0.5, 0.5, 0.3]
    assert document_ranking(ranked, scores, DOC_OF, "sum") == ["a", "b", "c"]      # a: 1.0 > b: 0.9
    assert document_ranking(ranked, scores, DOC_OF, "first") == ["b", "c"]         # a's first passage not ranked


def test_whether_documents_span_several_passages():
    assert spans_several_passages(DOC_OF) and not spans_several_passages({"a#0": "a", "b#0": "b"})
