"""coachbridge: coaching and mentoring programs inside the HR system you already run.

The public API a plugin or script may use is re-exported here; everything else is internal.
"""

from coachbridge.markers import hookimpl

__version__ = "0.1.0"

__all__ = ["__version__", "hookimpl"]
