"""Work that runs on a clock: the daily run and the program health checks behind it."""
