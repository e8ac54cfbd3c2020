"""Quarantine reason codes: every rejected raw record carries exactly one.

The first rule that applies wins, in the order below (docs/INGEST.md).
"""

from __future__ import annotations

INVALID_JSON = "invalid_json"
NOT_AN_OBJECT = "not_an_object"
MISSING_TIMESTAMP = "missing_timestamp"
MISSING_ACTION_NAME = "missing_action_name"
MISSING_QUERY_ID = "missing_query_id"
MISSING_USER_QUERY = "missing_user_query"
MISSING_CLIENT_ID = "missing_client_id"
MISSING_OBJECT_ID = "missing_object_id"
MISSING_POSITION = "missing_position"
BAD_TIMESTAMP = "bad_timestamp"
OUT_OF_WINDOW = "out_of_window"
BAD_POSITION = "bad_position"
DUPLICATE_QUERY_ID = "duplicate_query_id"
UNKNOWN_QUERY_ID = "unknown_query_id"

REASONS: dict[str, str] = {
    INVALID_JSON: "the line is not valid JSON (truncated, garbage, two documents on one line, trailing content)",
    NOT_AN_OBJECT: "valid JSON but not an object (array, string, number, null)",
    MISSING_TIMESTAMP: "no `timestamp` (absent, null or empty)",
    MISSING_ACTION_NAME: "event without `action_name`",
    MISSING_QUERY_ID: "query document, or ranking event (impression/click/add_to_cart/purchase), without `query_id`",
    MISSING_USER_QUERY: "query document without `user_query`",
    MISSING_CLIENT_ID: "ranking event without `client_id`",
    MISSING_OBJECT_ID: "ranking event without `event_attributes.object.object_id`",
    MISSING_POSITION: "ranking event without `event_attributes.position.ordinal`",
    BAD_TIMESTAMP: "timestamp is neither epoch milliseconds nor ISO-8601 with a zone (Z or offset), or is not a real date",
    BAD_POSITION: (
        "ranking event whose ordinal is not an integer, is below the producer's base (0 or 1), "
        "or is beyond the hit list of its request (when that list contains every impressed item)"
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
