"""Operator tools behind the CLI: demo, generators, replay, reports, local Kafka, docs."""
