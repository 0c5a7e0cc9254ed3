"""Retain notify.

Lifecycle email journeys with consent, caps, SMTP delivery and open/click tracking.
"""
