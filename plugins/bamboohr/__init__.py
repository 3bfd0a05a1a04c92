"""The bamboohr connector for coachbridge."""
