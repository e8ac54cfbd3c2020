-- Generated from sie/schemas.py by `sie ddl`; do not edit by hand.

-- a clean UBI event (impression, click, add_to_cart, purchase, ...)
CREATE TABLE IF NOT EXISTS events (
    `event_id` STRING,
    `run_id` STRING,
    `application` STRING,
    `action_name` STRING,
    `query_id` STRING,
    `client_id` STRING,
    `session_id` STRING,
    `user_id` STRING,
    `item_id` STRING,
    `position` INT,
    `event_ts` TIMESTAMP,
    `dwell_time` DOUBLE,
    `query_text` STRING,
    `message_type` STRING,
    `object_id_field` STRING,
    `file` STRING,
    `line_no` BIGINT,
    `ds` STRING
)
USING DELTA PARTITIONED BY (ds);

-- a clean UBI query request (one per query_id)
CREATE TABLE IF NOT EXISTS queries (
    `query_id` STRING,
    `run_id` STRING,
    `application` STRING,
    `client_id` STRING,
    `session_id` STRING,
    `user_id` STRING,
    `query_text` STRING,
    `query_response_id` STRING,
    `hit_ids` ARRAY<STRING>,
    `request_ts` TIMESTAMP,
    `file` STRING,
    `line_no` BIGINT,
    `ds` STRING
)
USING DELTA PARTITIONED BY (ds);

-- a rejected raw record (or the unreadable part of a file) with the reason and the raw line
CREATE TABLE IF NOT EXISTS quarantine (
    `run_id` STRING,
    `source` STRING,
    `file` STRING,
    `line_no` BIGINT COMMENT '1-based (for truncated_file: the line where the unreadable rest starts, null for unreadable_file)',
    `reason` STRING,
    `detail` STRING,
    `raw` STRING COMMENT 'the line as valid UTF-8 text for display: invalid byte sequences become U+FFFD',
    `raw_bytes` BINARY COMMENT 'the line exactly as landed, without its line ending (LF or CRLF)',
    `ds` STRING
)
USING DELTA PARTITIONED BY (ds);

-- one impression of an item in a query response, with labels and features
CREATE TABLE IF NOT EXISTS samples (
    `sample_id` STRING,
    `run_id` STRING,
    `query_id` STRING,
    `client_id` STRING,
    `session_id` STRING,
    `request_ts` TIMESTAMP,
    `query_text` STRING,
    `item_id` STRING,
    `item_title` STRING,
    `position` INT,
    `click` INT,
    `add_to_cart` INT,
    `purchase` INT,
    `label` INT,
    `dwell_time` DOUBLE,
    `item_prior_ctr` DOUBLE,
    `item_log_impressions` DOUBLE,
    `query_log_freq` DOUBLE,
    `session_query_index` DOUBLE,
    `application` STRING,
    `query_tokens` ARRAY<STRING>,
    `item_tokens` ARRAY<STRING>,
    `suspected_bot` INT,
    `ds` STRING
)
USING DELTA PARTITIONED BY (ds);

-- a sample's score from one method for one model version (ds = the training window's last day)
CREATE TABLE IF NOT EXISTS importance_scores (
    `sample_id` STRING,
    `sample_ds` STRING,
    `run_id` STRING,
    `model_version` STRING,
    `score` DOUBLE,
    `model_id` STRING,
    `ds` STRING,
    `method` STRING
)
USING DELTA PARTITIONED BY (ds, method);

-- one (dataset, method, keep_ratio, seed, metric, subset, at) value, with costs
CREATE TABLE IF NOT EXISTS benchmark_results (
    `dataset` STRING,
    `ds` STRING,
    `method` STRING,
    `keep_ratio` DOUBLE,
    `seed` INT,
    `metric` STRING COMMENT 'a plain name, its structure is in subset and at (docs/BENCHMARKS.md)',
    `subset` STRING COMMENT 'what the metric is restricted to: a noise type (bot) or a setting (train.epochs), null = all',
    `at` DOUBLE COMMENT 'a curve coordinate: the FPR of noise_roc_tpr, the quantile of score_pct_quantile, null = scalar',
    `value` DOUBLE,
    `n_train` BIGINT,
    `train_seconds` DOUBLE,
    `score_seconds` DOUBLE,
    `created_at` TIMESTAMP,
    `model_id` STRING COMMENT 'the ranker trained (and retrained on the selection) to measure the row: mlp, minilm_cross',
    `score_model_id` STRING COMMENT 'the ranker whose importance scores chose the data (a proxy when not model_id), null = none',
    `run_id` STRING
)
USING DELTA PARTITIONED BY (run_id);

-- per ds and source: raw = accepted + quarantined + dedup_dropped
CREATE TABLE IF NOT EXISTS reconciliation (
    `run_id` STRING,
    `source` STRING COMMENT 'lines count under the source they are routed to (a bulk action line''s _index), files under their folder',
    `raw_records` BIGINT,
    `accepted` BIGINT,
    `quarantined` BIGINT,
    `dedup_dropped` BIGINT,
    `files` BIGINT,
    `files_read` BIGINT,
    `files_truncated` BIGINT,
    `files_unreadable` BIGINT,
    `raw_lines` BIGINT COMMENT 'a file-level quarantine row (truncated_file, unreadable_file) counts as one line and one record',
    `blank_lines` BIGINT,
    `bulk_action_lines` BIGINT,
    `ds` STRING
)
USING DELTA PARTITIONED BY (ds);

-- per model (ds) and method: how the scores moved since the previous model (written by sie_score_drift)
CREATE TABLE IF NOT EXISTS score_drift (
    `run_id` STRING,
    `previous_ds` STRING,
    `n_samples` BIGINT,
    `n_common` BIGINT,
    `spearman` DOUBLE,
    `top_decile_overlap` DOUBLE,
    `mean_score` DOUBLE,
    `previous_mean_score` DOUBLE,
    `created_at` TIMESTAMP,
    `ds` STRING,
    `method` STRING
)
USING DELTA PARTITIONED BY (ds, method);

-- per ds: the day manifest. A day's five ingest tables are visible only for the run_id named here, committed after all five, so a day is visible whole or not at all
CREATE TABLE IF NOT EXISTS ingest_days (
    `run_id` STRING,
    `committed_at` TIMESTAMP,
    `raw_fingerprint` STRING,
    `settings` STRING,
    `events` BIGINT,
    `queries` BIGINT,
    `quarantine` BIGINT,
    `samples` BIGINT,
    `ds` STRING
)
USING DELTA PARTITIONED BY (ds);

