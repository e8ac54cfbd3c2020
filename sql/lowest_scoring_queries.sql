-- Queries whose samples score lowest (mean percentile rank within each method), latest model.
WITH ranked AS (
    SELECT i.method, i.sample_id,
           percent_rank() OVER (PARTITION BY i.method ORDER BY i.score) AS pct
    FROM importance_latest i
)
SELECT r.method, s.query_text, count(*) AS n_samples,
       round(avg(r.pct), 4) AS mean_percentile, sum(s.click) AS clicks
FROM ranked r
JOIN samples s USING (sample_id)
GROUP BY r.method, s.query_text
HAVING count(*) >= 5
QUALIFY row_number() OVER (PARTITION BY r.method ORDER BY avg(r.pct)) <= 5
ORDER BY r.method, mean_percentile;
