"""Pooling estimators: plain functions on numpy arrays returning frozen results."""
