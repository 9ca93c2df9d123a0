"""Errors a user can act on. The CLI prints them as one line and exits with code 1."""


class AeufError(Exception):
    """A problem with the user's input or setup; the message says what to do."""


class InputError(AeufError):
    """Bad input data: the message names the file, row and/or column."""


class ConfigError(AeufError):
    """A bad flag or configuration value."""


class MissingExtra(AeufError):
    """An optional dependency is not installed; the message gives the pip command."""
