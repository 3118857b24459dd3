"""The one base class of errors a user can fix: a stage ends with its one-line message, never a traceback."""


class BgetuneError(Exception):
    """Bad input, params, environment or a run that cannot go on; the message names the file/line or the param."""
