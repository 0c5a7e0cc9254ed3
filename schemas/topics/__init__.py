"""Payload models of Retain's Kafka topics, one module per topic version.

A breaking change is a new module and a new topic (`*_v2`); a v1 model only grows optional
fields, and consumers ignore fields they do not know.
"""
