"""Evaluation: IR metrics, paired significance, latency, results and reports.

Light to import: pytrec_eval loads inside :func:`evaluate_run`, scipy inside :func:`wilcoxon_p`,
matplotlib inside :func:`plot_results`; nothing here imports torch or FAISS.
"""

from keff.eval.fast_metrics import gains_from_topk, topk_metrics
from keff.eval.latency import compare_latency, measure_batch_throughput, measure_latency
from keff.eval.metric_names import DEFAULT_METRICS, QA_METRICS, MetricName, parse_metric
from keff.eval.metrics import Qrels, Run, evaluate_run, judged_queries, run_from_topk
from keff.eval.plots import plot_results
from keff.eval.report import (
    Result,
    comparison_markdown,
    load_result,
    markdown_table,
    run_metadata,
    write_result,
)
from keff.eval.retrieval import evaluate_retrieval
from keff.eval.significance import (
    PairedComparison,
    compare_systems,
    gap_closed,
    holm,
    paired_bootstrap_ci,
    randomization_test,
    wilcoxon_p,
)

__all__ = [
    "DEFAULT_METRICS",
    "QA_METRICS",
    "MetricName",
    "PairedComparison",
    "Qrels",
    "Result",
    "Run",
    "compare_systems",
    "comparison_markdown",
    "evaluate_retrieval",
    "evaluate_run",
    "gains_from_topk",
    "holm",
    "judged_queries",
    "load_result",
    "markdown_table",
    "compare_latency",
    "measure_batch_throughput",
    "measure_latency",
    "gap_closed",
    "paired_bootstrap_ci",
    "parse_metric",
    "plot_results",
    "randomization_test",
    "run_from_topk",
    "run_metadata",
    "topk_metrics",
    "wilcoxon_p",
    "write_result",
]
