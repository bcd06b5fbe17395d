"""The one exception type for user mistakes."""


class UserError(Exception):
    """Bad input a user can fix: the command line prints the message on one line and exits non-zero.

    Messages name the problem and the fix, e.g. ``"photo.jpg: no such file; check the path"``.
    """
