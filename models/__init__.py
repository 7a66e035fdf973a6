"""Pure forecasting core (no Kafka, faust or ClickHouse): per-key state a stream agent keeps.

- ``periods``: events → UTC day / ISO week buckets, closed by event time, late revisions;
- ``families``, ``linear``, ``registry``: model families and named, versioned specs;
- ``forecaster``: learn, score, forecast with conformal intervals, status, factors;
- ``accuracy``: prequential MAE/WAPE/MAPE/bias and the rep deviation tracker;
- ``state``, ``snapshot``: one object per key and its versioned snapshot bytes;
- ``synthetic``: seeded series for tests and benchmarks.
"""
