"""Retain scoring.

CLV, RFM, value tiers, loyalty ladder, lifecycle stage and churn risk; the analytics dashboard.
"""
