"""The demo storefront, order replays and the ingest client they share.

The pure parts (`storefront`: how simulated shoppers behave; `orders`: CDNOW and CSV order
files) build Segment events; `ingest_client` sends them through the public tracking API as a
storefront's SDK would.
"""
