"""Local web dashboard over the ClickHouse views: forecasts, customer journey, compliance health."""
