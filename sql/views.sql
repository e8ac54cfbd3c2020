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
       -- the held-out clicks with the oracle's noise removed (synthetic and ESCI worlds only)
       max(CASE WHEN metric = 'clean_click_auc' THEN value END)     AS clean_click_auc,
       max(CASE WHEN metric = 'clean_click_logloss' THEN value END) AS clean_click_logloss,
       max(n_train) AS n_train, max(train_seconds) AS train_seconds, max(score_seconds) AS score_seconds
FROM benchmark_results
GROUP BY ALL;

-- Mean importance per (model ds, method, query text): the samples a model scored, joined to
-- their impression (importance_scores.sample_ds is the samples partition of the sample).
CREATE OR REPLACE VIEW importance_by_query AS
SELECT i.ds, i.method, s.query_text, avg(i.score) AS mean_score, count(*) AS n_samples
FROM importance_scores i JOIN samples s ON s.ds = i.sample_ds AND s.sample_id = i.sample_id
GROUP BY ALL;

-- Mean importance per (model ds, method, item).
CREATE OR REPLACE VIEW importance_by_item AS
SELECT i.ds, i.method, s.item_id, avg(i.score) AS mean_score, count(*) AS n_samples
FROM importance_scores i JOIN samples s ON s.ds = i.sample_ds AND s.sample_id = i.sample_id
GROUP BY ALL;

-- Stability across nights: for each model ds and method, the Spearman rank correlation of the
-- per-query (level 'query') and per-item (level 'item') mean importance with the previous model's
-- (the latest earlier ds scored by that method), over the queries / items both models scored.
-- Spearman = Pearson correlation of the ranks, ties given their average rank (as scipy does).
CREATE OR REPLACE VIEW importance_stability AS
WITH models AS (
    SELECT method, ds, lag(ds) OVER (PARTITION BY method ORDER BY ds) AS previous_ds
    FROM (SELECT DISTINCT method, ds FROM importance_scores)
),
means AS (
    SELECT 'query' AS level, ds, method, query_text AS key, mean_score FROM importance_by_query
    UNION ALL
    SELECT 'item' AS level, ds, method, item_id AS key, mean_score FROM importance_by_item
),
paired AS (
    SELECT cur.level, m.method, m.ds, m.previous_ds, cur.key,
           cur.mean_score AS score_now, prev.mean_score AS score_before
    FROM models m
    JOIN means cur ON cur.method = m.method AND cur.ds = m.ds
    JOIN means prev ON prev.level = cur.level AND prev.method = m.method
                     AND prev.ds = m.previous_ds AND prev.key = cur.key
),
ranked AS (
    SELECT level, method, ds, previous_ds,
           rank() OVER (PARTITION BY level, method, ds ORDER BY score_now)
             + (count(*) OVER (PARTITION BY level, method, ds, score_now) - 1) / 2.0 AS rank_now,
           rank() OVER (PARTITION BY level, method, ds ORDER BY score_before)
             + (count(*) OVER (PARTITION BY level, method, ds, score_before) - 1) / 2.0 AS rank_before
    FROM paired
)
SELECT level, method, ds, previous_ds, count(*) AS n_common, corr(rank_now, rank_before) AS spearman
FROM ranked
GROUP BY ALL;
