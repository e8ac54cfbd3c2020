-- Holdout NDCG@10 per method and keep ratio, averaged over seeds and days, best first.
SELECT dataset, method, keep_ratio,
       count(DISTINCT seed)          AS seeds,
       count(DISTINCT ds)            AS days,
       round(avg(ndcg_at_10), 4)     AS ndcg_at_10,
       round(avg(mrr), 4)            AS mrr,
       round(avg(click_auc), 4)      AS click_auc,
       round(avg(n_train), 0)        AS n_train
FROM benchmark_wide
GROUP BY dataset, method, keep_ratio
ORDER BY dataset, keep_ratio, ndcg_at_10 DESC;
