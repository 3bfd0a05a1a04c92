"""Matching: scoring builds candidate pairs, ``assign`` solves them exactly."""

from coachbridge.matching.solver import assign, assign_with_limits

__all__ = ["assign", "assign_with_limits"]
