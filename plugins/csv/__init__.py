"""The csv connector for coachbridge."""
