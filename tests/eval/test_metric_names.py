import pytest

from keff.errors import KeffError
from keff.eval.metric_names import DEFAULT_METRICS, QA_METRICS, MetricName, parse_metric, parse_metrics


def test_parse_known_forms():
    assert parse_metric("ndcg@10") == MetricName("ndcg", 10)
    assert parse_metric("mrr@100").ir_measures_name == "RR@100"
    assert parse_metric("hit@3").ir_measures_name == "Success@3"
    assert parse_metric("recall@7").ir_measures_name == "R@7"
    assert parse_metric("map@1000").name == "map@1000"
    assert [m.name for m in parse_metrics(DEFAULT_METRICS + QA_METRICS)] == list(DEFAULT_METRICS + QA_METRICS)


@pytest.mark.parametrize("bad", ["ndcg", "NDCG@10", "p@10", "ndcg@0", "ndcg@-1", "ndcg@10.5", "", 10])
def test_unknown_names_list_the_valid_forms(bad):
    with pytest.raises(KeffError, match=r"valid forms are ndcg@k, mrr@k, recall@k, map@k, hit@k"):
        parse_metric(bad)


def test_parse_metrics_refuses_duplicates_empty_and_a_bare_string():
    with pytest.raises(KeffError, match="twice: ndcg@10"):
        parse_metrics(["ndcg@10", "mrr@10", "ndcg@10"])
    with pytest.raises(KeffError, match="no metrics"):
        parse_metrics([])
    with pytest.raises(KeffError, match="not the string"):
        parse_metrics("ndcg@10")
