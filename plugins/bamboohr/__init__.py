"""The BambooHR connector for coachbridge (plugin name ``bamboohr``)."""

from coachbridge_bamboohr.config import BambooHRConfig
from coachbridge_bamboohr.connector import BambooHRConnector

__all__ = ["BambooHRConfig", "BambooHRConnector"]
