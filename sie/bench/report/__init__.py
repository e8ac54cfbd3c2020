"""The benchmark report, rebuilt from the `benchmark_results` table alone.

``build_report(cfg, run_id)`` reads the partition ``run_id=<run_id>`` and writes
``<warehouse>/reports/<run_id>/`` with ``report.md``, ``report.html``, ``summary.json``
and PNG plots:

* ``ndcg_vs_keep.png``: holdout NDCG@10 vs keep ratio, the 3 best methods in colour with
  95% CI bands over seeds and the rest grey, and the paired difference to random at each ratio;
* ``ndcg_panels.png``: the same, one panel per method against random and stratified;
* ``click_vs_keep.png``: held-out click AUC / log loss vs keep ratio, raw beside clean-click;
* ``noise_roc.png``: noise-detection ROC curves (low importance = flagged as noise), all label
  noise and one panel per noise type;
* ``cost.png``: scoring cost per method relative to one training epoch;
* ``score_dist.png``: score percentile distributions by noise type, per method.

The modules, in the order data flows through them:

* :mod:`~sie.bench.report.summary`: read the rows, summarise them into a :class:`BenchSummary`
  (keep-ratio curves, paired comparisons with random, noise, cost, ROC, run info);
* :mod:`~sie.bench.report.tables`: the tables and sentences of the report;
* :mod:`~sie.bench.report.plots`: the matplotlib plots;
* :mod:`~sie.bench.report.render`: Markdown and HTML, and writing the report folder;
* :mod:`~sie.bench.report.no_oracle`: the oracle-free report on real logs (``sie report --no-oracle``).

What the rows mean (metric, ``subset``, ``at``) is defined in :mod:`sie.bench.rows`.
"""

from __future__ import annotations

from sie.bench.report.render import build_report
from sie.bench.report.summary import BenchSummary, latest_run_id, load_results, summarise

__all__ = ["BenchSummary", "build_report", "latest_run_id", "load_results", "summarise"]
