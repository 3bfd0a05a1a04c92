"""Matching: scoring builds candidate pairs, ``assign`` solves them exactly."""
