"""The pure core of ingest: body limits, write keys, rate limits and the intake of events.

Nothing here performs I/O; the HTTP app, the key repository and the publisher wrap it.
"""
