"""POS HTTP ingestion endpoint: batches of ticket lines pushed by store systems."""
