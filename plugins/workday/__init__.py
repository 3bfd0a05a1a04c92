"""The workday connector for coachbridge."""
