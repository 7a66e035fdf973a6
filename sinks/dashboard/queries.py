"""The SQL behind each dashboard, always bound through ``parameters=`` (never formatted).

Every query reads the views of migrations 0005 (forecasts, violations, dead letters), 0007
(channel health) and 0011 (journeys) and takes the same :class:`Filters`; an empty region or
product line means "all" (journeys and channel health have no product line). Results come back
as plain dicts ready for JSON.
"""

# The f-strings below splice only the module's own SQL fragments; user values are bound.
# ruff: noqa: S608

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from clickhouse_connect.driver.client import Client

Record = dict[str, Any]

# Shared predicates: `{region:String} = ''` turns a filter off without building SQL from input.
_REGION = "({region:String} = '' OR region = {region:String})"
_LINE = "({product_line:String} = '' OR product_line = {product_line:String})"
_SPAN = "BETWEEN {start:DateTime64(3)} AND {end:DateTime64(3)}"


@dataclass(frozen=True, slots=True)
class Filters:
    """What the user picked: a time range, optional region and product line, a horizon."""

    start: datetime
    end: datetime
    region: str = ""
    product_line: str = ""
    horizon: int = 1

    def parameters(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "end": self.end,
            "region": self.region,
            "product_line": self.product_line,
            "horizon": self.horizon,
        }


def rows(client: Client, sql: str, filters: Filters) -> list[Record]:
    """Run one parameterised query; return its rows as dicts."""
    return list(client.query(sql, parameters=filters.parameters()).named_results())


FORECAST_SERIES = f"""
SELECT target_start, sum(point) AS forecast, sum(lower) AS low, sum(upper) AS high,
       if(countIf(actual IS NOT NULL) = count(), sum(assumeNotNull(actual)), NULL) AS observed,
       count() AS series
FROM (
    SELECT * FROM dashboard_forecast_vs_actual
    WHERE horizon = {{horizon:UInt16}} AND target_start {_SPAN} AND {_REGION} AND {_LINE}
    ORDER BY produced_at DESC
    LIMIT 1 BY key, target_start
)
GROUP BY target_start
ORDER BY target_start
"""

FORECAST_SEGMENTS = f"""
SELECT region, product_line,
       sum(point) AS forecast, sum(assumeNotNull(actual)) AS observed,
       sum(abs(point - assumeNotNull(actual))) / nullIf(sum(assumeNotNull(actual)), 0) AS wape,
       avg(assumeNotNull(actual) BETWEEN lower AND upper) AS coverage,
       any(level) AS interval_level
FROM dashboard_forecast_vs_actual
WHERE actual IS NOT NULL AND horizon = {{horizon:UInt16}} AND target_start {_SPAN}
  AND {_REGION} AND {_LINE}
GROUP BY region, product_line
ORDER BY region, product_line
"""

FORECAST_FACTORS = f"""
SELECT factor, avg(abs(weight)) AS importance, avg(weight) AS mean_weight, count() AS forecasts
FROM dashboard_forecast_factors
WHERE horizon = {{horizon:UInt16}} AND {_REGION} AND {_LINE}
GROUP BY factor
ORDER BY importance DESC
LIMIT 10
"""

FORECAST_FRESHNESS = f"""
SELECT region, product_line, max(freshness) AS newest_input, max(produced_at) AS produced_at,
       dateDiff('second', max(freshness), now64(3)) AS input_age_s,
       uniqExact(key) AS keys, countIf(status != 'ok') AS not_ok
FROM dashboard_forecast_vs_actual
WHERE horizon = {{horizon:UInt16}} AND {_REGION} AND {_LINE}
GROUP BY region, product_line
ORDER BY input_age_s DESC
"""

FORECAST_ACCURACY_TREND = f"""
SELECT period_start,
       avg(abs_error) AS mae,
       sum(abs_error) / nullIf(sum(actual), 0) AS wape,
       avgIf(actual BETWEEN lower AND upper, lower IS NOT NULL) AS coverage,
       count() AS scored
FROM dashboard_forecast_accuracy
WHERE horizon = {{horizon:UInt16}} AND period_start {_SPAN} AND {_REGION} AND {_LINE}
GROUP BY period_start
ORDER BY period_start
"""

_ADDS = f"""
SELECT * FROM dashboard_journey_adds WHERE added_at {_SPAN} AND {_REGION}
"""

_FUNNEL_COLUMNS = """
count() AS added, countIf(level >= 2) AS visited_72h, countIf(level >= 3) AS purchased_72h,
countIf(final) AS decided, countIf(final AND level < 3) AS not_converted_72h,
if(decided > 0, not_converted_72h / decided, NULL) AS not_converted_72h_share
"""

JOURNEY_FUNNEL = f"SELECT {_FUNNEL_COLUMNS} FROM ({_ADDS})"

JOURNEY_CHANNELS = f"""
SELECT channel, {_FUNNEL_COLUMNS}
FROM ({_ADDS})
GROUP BY channel
ORDER BY added DESC, channel
"""

_TOUCHPOINTS = f"""
SELECT * FROM dashboard_journey_touchpoints WHERE occurred_at {_SPAN} AND {_REGION}
"""

JOURNEY_HEATMAP = f"""
SELECT touch, toDayOfWeek(occurred_at) AS weekday, toHour(occurred_at) AS hour,
       uniqExact(event_id) AS touchpoints
FROM ({_TOUCHPOINTS})
GROUP BY touch, weekday, hour
ORDER BY touch, weekday, hour
"""

JOURNEY_DAILY = f"""
SELECT toDate(occurred_at) AS day, touch, uniqExact(event_id) AS touchpoints,
       uniqExact(customer_id) AS customers
FROM ({_TOUCHPOINTS})
GROUP BY day, touch
ORDER BY day, touch
"""

VIOLATIONS_BY_RULE_DAY = f"""
SELECT day, rule_id, count() AS violations
FROM dashboard_violations
WHERE occurred_at {_SPAN} AND {_LINE}
GROUP BY day, rule_id
ORDER BY day, rule_id
"""

VIOLATIONS_BY_REP = f"""
SELECT rep_id, count() AS violations, countIf(severity = 'high') AS high,
       uniqExact(rule_id) AS rules, uniqExact(conversation_id) AS conversations
FROM dashboard_violations
WHERE occurred_at {_SPAN} AND {_LINE}
GROUP BY rep_id
ORDER BY violations DESC, rep_id
LIMIT 20
"""

CHANNEL_HEALTH = f"""
SELECT channel_id, channel_kind, region, score, turnover, sla, intent, alerting, latest_event_at
FROM channel_health_latest
WHERE score IS NOT NULL AND {_REGION}
ORDER BY score, channel_id
"""

DEAD_LETTERS_BY_CODE = """
SELECT stage, error_code, sum(records) AS records
FROM dead_letters_daily
WHERE day BETWEEN toDate({start:DateTime64(3)}) AND toDate({end:DateTime64(3)})
GROUP BY stage, error_code
ORDER BY records DESC
"""

DEAD_LETTERS_DAILY = """
SELECT day, stage, sum(records) AS records
FROM dead_letters_daily
WHERE day BETWEEN toDate({start:DateTime64(3)}) AND toDate({end:DateTime64(3)})
GROUP BY day, stage
ORDER BY day, stage
"""

FILTER_OPTIONS = """
SELECT
    (SELECT groupUniqArray(region) FROM (
        SELECT DISTINCT region FROM pos_transactions
        UNION DISTINCT SELECT DISTINCT region FROM forecasts)) AS regions,
    (SELECT groupUniqArray(product_line) FROM (
        SELECT DISTINCT product_line FROM pos_transactions)) AS product_lines,
    (SELECT groupUniqArray(horizon) FROM (SELECT DISTINCT horizon FROM forecasts)) AS horizons,
    (SELECT min(occurred_at) FROM pos_transactions) AS first_event,
    (SELECT max(occurred_at) FROM pos_transactions) AS last_event
"""


def forecast(client: Client, filters: Filters) -> Record:
    """Dashboard 1: forecast vs actual with intervals, segments, factors, freshness, accuracy."""
    return {
        "series": rows(client, FORECAST_SERIES, filters),
        "segments": rows(client, FORECAST_SEGMENTS, filters),
        "factors": rows(client, FORECAST_FACTORS, filters),
        "freshness": rows(client, FORECAST_FRESHNESS, filters),
        "accuracy": rows(client, FORECAST_ACCURACY_TREND, filters),
    }


def journey(client: Client, filters: Filters) -> Record:
    """Dashboard 2: WeCom added -> store visit -> purchase within 72 h, overall and per channel
    of the add (by add time), and touchpoints by medium, weekday and hour (by step time)."""
    funnel = rows(client, JOURNEY_FUNNEL, filters)
    return {
        "funnel": funnel[0] if funnel else {},
        "channels": rows(client, JOURNEY_CHANNELS, filters),
        "heatmap": rows(client, JOURNEY_HEATMAP, filters),
        "daily": rows(client, JOURNEY_DAILY, filters),
    }


def compliance(client: Client, filters: Filters) -> Record:
    """Dashboard 3: violations by rule, day and rep; the latest channel health scores; dead
    letters by stage and code."""
    return {
        "by_rule_day": rows(client, VIOLATIONS_BY_RULE_DAY, filters),
        "by_rep": rows(client, VIOLATIONS_BY_REP, filters),
        "channel_health": rows(client, CHANNEL_HEALTH, filters),
        "dead_letters": rows(client, DEAD_LETTERS_BY_CODE, filters),
        "dead_letters_daily": rows(client, DEAD_LETTERS_DAILY, filters),
    }


def options(client: Client) -> Record:
    """Values the filter controls offer, and the time span the data covers."""
    result = list(client.query(FILTER_OPTIONS).named_results())
    found = result[0] if result else {}
    return {
        "regions": sorted(found.get("regions") or []),
        "product_lines": sorted(found.get("product_lines") or []),
        "horizons": sorted(found.get("horizons") or []) or [1],
        "first_event": found.get("first_event"),
        "last_event": found.get("last_event"),
    }
