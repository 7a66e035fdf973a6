"""Avro schemas and the codec: the ground floor of dealstream (imports nothing of ours).

- ``catalog``: event types, topics, keys, composed schemas and fingerprints;
- ``codec``: encode/decode of Kafka values with schema headers or Confluent framing;
- ``validation``: semantic checks per event type; ``compatibility``: release checks;
- ``samples``: valid sample records for tests and the simulator.
"""
