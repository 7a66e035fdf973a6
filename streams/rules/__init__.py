"""Compliance phrase rules and the business rule language: pure code, rules are data (DESIGN §3.7).

Nothing here imports Kafka, faust or ClickHouse; the stream agents feed events in and publish
the alert dicts that come out.
"""
