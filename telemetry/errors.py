"""The one root exception of vanbox and its few specialisations.

Library code raises these; the command line turns them into one clear line.
"""


class VanboxError(Exception):
    """Root of every error vanbox raises on purpose."""


class ConfigError(VanboxError):
    """The configuration file is missing, unreadable or has a bad value.

    The message names the key and says how to fix it.
    """


class StoreError(VanboxError):
    """The SQLite store cannot be opened, migrated or written."""


class PayloadError(VanboxError):
    """An MQTT payload does not match the documented format."""


class PlanError(VanboxError):
    """A tour plan (or a change to it) is not valid: the message names the field."""
