"""Prometheus metrics of the gateway (served at ``GET /metrics``)."""

from prometheus_client import Counter, Histogram

EVENTS_PUBLISHED = Counter(
    "gateway_events_published_total", "Events acknowledged by Kafka", ["topic", "type"]
)
PUBLISH_FAILURES = Counter(
    "gateway_publish_failures_total", "Events Kafka did not acknowledge", ["topic", "error"]
)
PRODUCER_RETIREMENTS = Counter(
    "gateway_kafka_producer_retirements_total",
    "Kafka producers replaced after a failed publish (their sequence numbers were in doubt)",
)
PUBLISH_SECONDS = Histogram(
    "gateway_publish_seconds",
    "Time from publish() to Kafka's acknowledgement",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0),
)

HTTP_REQUESTS = Counter(
    "gateway_http_requests_total",
    "HTTP requests answered, by route template (never the raw path), method and status",
    ["route", "method", "status"],
)
HTTP_SECONDS = Histogram(
    "gateway_http_request_seconds",
    "Time from a request's arrival to the end of its answer, by route template",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
HTTP_REFUSALS = Counter(
    "gateway_http_refusals_total",
    "Requests refused before anything was published, by reason (signature, too_large, "
    "rate_limited, invalid, unknown_form, too_deep, conflict)",
    ["reason"],
)
