-- Analysis views, created in the DuckDB catalog on top of the table views
-- (`sie sql` loads this file; the table views themselves come from sie/schemas.py).

-- The latest model version's scores, one row per (sample, method).
CREATE OR REPLACE VIEW importance_latest AS
SELECT s.*
FROM importance_scores s
WHERE s.ds = (SELECT max(ds) FROM importance_scores);

-- Benchmark values in wide form: one row per (run, dataset, method, keep_ratio, seed).
CREATE OR REPLACE VIEW benchmark_wide AS
SELECT run_id, dataset, ds, method, keep_ratio, seed,
       max(CASE WHEN metric = 'ndcg_at_10' THEN value END)    AS ndcg_at_10,
       max(CASE WHEN metric = 'mrr' THEN value END)           AS mrr,
       max(CASE WHEN metric = 'click_auc' THEN value END)     AS click_auc,
       max(CASE WHEN metric = 'click_logloss' THEN value END) AS click_logloss,
       max(n_train) AS n_train, max(train_seconds) AS train_seconds, max(score_seconds) AS score_seconds
FROM benchmark_results
GROUP BY ALL;
