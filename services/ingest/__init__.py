"""Retain ingest.

Segment-compatible tracking API: validates, stamps and publishes touchpoints to Kafka.
"""
