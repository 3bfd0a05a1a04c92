"""The exceptions every part of coachbridge raises for *expected* failures.

The CLI turns these into one clear line and an exit status without a traceback:
``UserError`` (and subclasses) exit 2, ``RuntimeFailure`` (and subclasses) exit 1.
Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

__all__ = [
    "CoachbridgeError",
    "ConfigError",
    "ConnectorError",
    "DatabaseBehindError",
    "DatabaseUnavailable",
    "InputDataError",
    "NotFoundError",
    "RuntimeFailure",
    "SyncAborted",
    "UserError",
]


class CoachbridgeError(Exception):
    """Base class of every expected coachbridge error."""

    exit_code = 1


class UserError(CoachbridgeError):
    """Something the user gave us is wrong: a flag, a file, a config key. Exit status 2."""

    exit_code = 2


class ConfigError(UserError):
    """The configuration file is malformed or invalid.

    ``problems`` holds one line per problem, each naming the file and the dotted key.
    """

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class InputDataError(UserError):
    """An input file or payload has bad data; the message names the file and line."""


class NotFoundError(UserError):
    """A person, program, pairing, session or goal named on the command line does not exist."""


class DatabaseBehindError(UserError):
    """The database schema is older than this version of coachbridge."""


class RuntimeFailure(CoachbridgeError):
    """Something outside the user's input failed: a vendor, a database, the network. Exit 1."""


class DatabaseUnavailable(RuntimeFailure):
    """The database cannot be reached."""


class ConnectorError(RuntimeFailure):
    """A connector's remote system failed or refused; the message says which and why."""


class SyncAborted(UserError):
    """A sync stopped before writing because its result looked unsafe (e.g. too many leavers)."""
