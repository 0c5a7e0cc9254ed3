"""Retain profile.

Folds touchpoints into customer profiles; serves profile reads, export and erasure.
"""
