"""A pairing's life: its term, lifecycle (pause, resume, end, leavers), scheduled sessions and
their calendar files, and feedback."""
