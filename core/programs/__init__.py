"""Programs and who is in them: enrollment and eligibility, and the rules that turn review
events into enrollments, pairings, goals and messages."""
