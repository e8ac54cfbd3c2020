-- Distribution of importance scores per method for the latest model version.
SELECT method,
       count(*)                              AS n_samples,
       round(avg(score), 5)                  AS mean,
       round(stddev_samp(score), 5)          AS std,
       round(quantile_cont(score, 0.10), 5)  AS p10,
       round(quantile_cont(score, 0.50), 5)  AS p50,
       round(quantile_cont(score, 0.90), 5)  AS p90
FROM importance_latest
GROUP BY method
ORDER BY method;
