"""GenAI client metrics: token usage, operation duration, and what the calls cost.

Histogram buckets are the GenAI conventions' own, set by metric Views (and as the
instruments' advisory boundaries, so a provider without our Views still uses them).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from opentelemetry import metrics
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View

from seam.pricing import Usage

TOKEN_USAGE = "gen_ai.client.token.usage"
OPERATION_DURATION = "gen_ai.client.operation.duration"
COST = "coach.model.cost"

TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304,
                 16777216, 67108864)
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48,
                    40.96, 81.92)


def views() -> list[View]:
    """The Views any MeterProvider recording these metrics should be built with."""
    return [
        View(instrument_name=TOKEN_USAGE,
             aggregation=ExplicitBucketHistogramAggregation(list(TOKEN_BUCKETS))),
        View(instrument_name=OPERATION_DURATION,
             aggregation=ExplicitBucketHistogramAggregation(list(DURATION_BUCKETS))),
    ]


class ModelMetrics:
    """The three instruments, created once per meter provider."""

    def __init__(self, meter_provider: metrics.MeterProvider):
        meter = meter_provider.get_meter("portfolio-coach")
        self.tokens = meter.create_histogram(
            TOKEN_USAGE, unit="{token}", description="Tokens used per model call",
            explicit_bucket_boundaries_advisory=TOKEN_BUCKETS)
        self.duration = meter.create_histogram(
            OPERATION_DURATION, unit="s", description="Duration of a model call",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS)
        self.cost = meter.create_counter(
            COST, unit="USD", description="What the coach's own model calls cost (known prices)")

    def record(self, attributes: Mapping[str, Any], seconds: float, usage: Usage | None,
               cost: Decimal | None, purpose: str) -> None:
        """One model call; `usage` is None when the call failed."""
        self.duration.record(seconds, dict(attributes))
        if usage is None:
            return
        for kind, count in (("input", usage.prompt_tokens), ("output", usage.output_tokens)):
            self.tokens.record(count, {**attributes, "gen_ai.token.type": kind})
        if cost is not None:
            model = attributes.get("gen_ai.response.model") or attributes["gen_ai.request.model"]
            self.cost.add(float(cost), {"gen_ai.request.model": model, "coach.purpose": purpose})
