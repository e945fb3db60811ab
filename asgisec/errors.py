"""The errors asgisec raises, all in one tree.

    AsgisecError            anything asgisec itself raises
    ├── ConfigError         a configuration value is wrong; raised at start-up, never per request
    └── BackendError        a rate-limit storage backend failed (wrapped once, at the boundary)

Refusals of client requests are *not* exceptions: they are canned responses sent by the
middleware. Exceptions raised by the wrapped application are never wrapped or swallowed.
"""

from __future__ import annotations

__all__ = ["AsgisecError", "BackendError", "ConfigError"]


class AsgisecError(Exception):
    """Base class of every error asgisec raises."""


class ConfigError(AsgisecError):
    """A configuration value cannot be used.

    Carries the environment variable's name, the offending value (masked when the variable
    holds a secret) and a sentence saying what is expected, so that an operator can fix the
    deployment from the message alone.
    """

    def __init__(self, variable: str, value: object, expected: str) -> None:
        self.variable = variable
        self.value = value
        self.expected = expected
        super().__init__(f"{variable}={value!r} is invalid: expected {expected}")


class BackendError(AsgisecError):
    """The rate-limit storage did not answer correctly (down, timed out, protocol error)."""
