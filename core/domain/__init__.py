"""The core domain: pydantic v2 models, one module per concept.

These are the shapes connectors produce and commands print. The store keeps them in
SQLAlchemy tables (``coachbridge.store.tables``); conversion lives beside the store.
"""

from coachbridge.domain._base import YEARS, plain_text, utc
from coachbridge.domain.enrollment import Enrollment, Role, normalize_role
from coachbridge.domain.feedback import Feedback
from coachbridge.domain.goal import Goal, GoalStatus
from coachbridge.domain.pairing import Pairing, PairingStatus
from coachbridge.domain.person import Person, PersonRecord, PersonStatus, check_reporting_tree
from coachbridge.domain.profile import SLOTS, Intake, ProfileAnswer
from coachbridge.domain.program import Eligibility, Program, ProgramKind
from coachbridge.domain.review import ReviewEvent, normalize_rating
from coachbridge.domain.rule import Condition, Rule, RuleAction
from coachbridge.domain.session import Session, SessionStatus
from coachbridge.domain.training import TrainingRecord, training_counts, training_key

__all__ = [
    "SLOTS",
    "YEARS",
    "Condition",
    "Eligibility",
    "Enrollment",
    "Feedback",
    "Goal",
    "GoalStatus",
    "Intake",
    "Pairing",
    "PairingStatus",
    "Person",
    "PersonRecord",
    "PersonStatus",
    "ProfileAnswer",
    "Program",
    "ProgramKind",
    "ReviewEvent",
    "Role",
    "Rule",
    "RuleAction",
    "Session",
    "SessionStatus",
    "TrainingRecord",
    "check_reporting_tree",
    "normalize_rating",
    "normalize_role",
    "plain_text",
    "training_counts",
    "training_key",
    "utc",
]
