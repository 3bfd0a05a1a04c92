"""The coachbridge webhook server (Flask app factory ``create_app``) and worker."""
