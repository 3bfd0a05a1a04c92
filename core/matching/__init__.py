"""Matching: scoring builds candidate pairs; ``assign`` matches the most learners, then the
highest total score; the engine certifies that over every allowed pair."""

from coachbridge.matching.solver import assign, assign_with_limits

__all__ = ["assign", "assign_with_limits"]
