"""Quarantine reason codes: every rejected raw record carries exactly one.

The first rule that applies wins, in the order below (docs/INGEST.md). The first two are
file-level: a quarantine row standing for the part of a file that could not be read.
"""

from __future__ import annotations

TRUNCATED_FILE = "truncated_file"
UNREADABLE_FILE = "unreadable_file"
INVALID_UTF8 = "invalid_utf8"
INVALID_JSON = "invalid_json"
NOT_AN_OBJECT = "not_an_object"
DUPLICATE_KEY = "duplicate_key"
BAD_FIELD_TYPE = "bad_field_type"
WRONG_SOURCE = "wrong_source"
MISSING_TIMESTAMP = "missing_timestamp"
MISSING_ACTION_NAME = "missing_action_name"
MISSING_QUERY_ID = "missing_query_id"
MISSING_USER_QUERY = "missing_user_query"
MISSING_CLIENT_ID = "missing_client_id"
MISSING_OBJECT_ID = "missing_object_id"
MISSING_POSITION = "missing_position"
BAD_TIMESTAMP = "bad_timestamp"
BAD_POSITION = "bad_position"
BAD_DWELL_TIME = "bad_dwell_time"
OUT_OF_WINDOW = "out_of_window"
DUPLICATE_QUERY_ID = "duplicate_query_id"
UNKNOWN_QUERY_ID = "unknown_query_id"

REASONS: dict[str, str] = {
    TRUNCATED_FILE: (
        "the file's compressed stream is truncated or damaged (or has trailing bytes): its lines before "
        "the damage are read; this one row stands for the unreadable rest (`raw_bytes`: the partial last line)"
    ),
    UNREADABLE_FILE: (
        "the file cannot be read at all (it cannot be opened, or it is zstd, zip, 7z or lz4 compressed); "
        "one row for the whole file, `line_no` null"
    ),
    INVALID_UTF8: "the line is not valid UTF-8 (`raw` shows it with U+FFFD, `raw_bytes` holds the exact bytes)",
    INVALID_JSON: "the line is not valid JSON (truncated, garbage, two documents on one line, trailing content)",
    NOT_AN_OBJECT: "valid JSON but not an object (array, string, number, null)",
    DUPLICATE_KEY: "a JSON object (at any depth) repeats a key; which value is meant is unknowable",
    BAD_FIELD_TYPE: (
        "an id, action or text field (action_name, query_id, client_id, session_id, user_id, application, "
        "user_query, message_type, query_response_id, object_id, object_id_field, description) that is not a "
        "JSON string, or `query_response_hit_ids` that is not an array of strings"
    ),
    WRONG_SOURCE: (
        "the document's shape contradicts the source it is routed to (its bulk action line's `_index`, "
        "else its landing folder): an event document (`action_name` or `event_attributes`) for ubi_queries, "
        "or a query document (`query_response_id`, `query_response_hit_ids` or `query_attributes`, and "
        "no event field) for ubi_events"
    ),
    MISSING_TIMESTAMP: "no `timestamp` (absent, null or empty)",
    MISSING_ACTION_NAME: "event without `action_name`",
    MISSING_QUERY_ID: "query document, or ranking event (impression/click/add_to_cart/purchase), without `query_id`",
    MISSING_USER_QUERY: "query document without `user_query`",
    MISSING_CLIENT_ID: "ranking event without `client_id`",
    MISSING_OBJECT_ID: "ranking event without `event_attributes.object.object_id`",
    MISSING_POSITION: "ranking event without `event_attributes.position.ordinal`",
    BAD_TIMESTAMP: (
        "timestamp is neither epoch milliseconds nor RFC 3339 / ISO-8601 with a zone (Z or offset, any case), "
        "or is not a real date"
    ),
    BAD_POSITION: (
        "ranking event whose ordinal is not an integral JSON number, is below the producer's base (0 or 1), "
        "or is beyond the hit list of its request (when that list contains every impressed item)"
    ),
    BAD_DWELL_TIME: (
        "`event_attributes.dwell_time` present but not a JSON number, not finite, negative, "
        "or above MAX_DWELL_SECONDS (one day)"
    ),
    OUT_OF_WINDOW: "timestamp outside [ds - lateness, ds + 1 day + lateness)",
    DUPLICATE_QUERY_ID: (
        "a query document reusing an accepted query_id for a different request (other user_query "
        "or client_id); response documents of the same request are all accepted"
    ),
    UNKNOWN_QUERY_ID: (
        "click / add_to_cart / purchase whose query_id has no query document and no impression "
        "that day nor the previous day"
    ),
}

# Actions that make ranking samples: an impression, and the interactions graded on it.
RANKING_ACTIONS = ("impression", "click", "add_to_cart", "purchase")
INTERACTIONS = ("click", "add_to_cart", "purchase")

# A dwell time above this many seconds (a day) is a unit or clock error, not a reading.
MAX_DWELL_SECONDS = 86_400.0
