"""Errors a user can act on. The CLI prints them as one line and exits with code 1."""


class AeufError(Exception):
    """A problem with the user's input or setup; the message says what to do."""


class InputError(AeufError):
    """Bad input data: the message names the file, row and/or column."""


class ConfigError(AeufError):
    """A bad flag or configuration value."""


class MissingExtra(AeufError):
    """An optional dependency is not installed; the message gives the pip command."""


class OracleUnreachable(AeufError):
    """The oracle did not answer a run of requests (server down, wrong URL, bad key)."""


class NotSent(AeufError):
    """A paid request was not sent because its intent could not be logged (a full disk)."""


class NothingLabelled(AeufError):
    """A run that asked the oracle got no usable label at all."""


class Stopped(AeufError):
    """The user stopped the run (quit, end of input); everything answered is kept."""
