"""Notifications: channels registered through the ``coachbridge_register_notifiers`` hook."""
