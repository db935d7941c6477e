"""Exceptions with one-line messages meant for users."""


class FaceKeypointsError(Exception):
    """Base class: the message is a complete one-line explanation for a user."""


class InputError(FaceKeypointsError, ValueError):
    """An input file or array is missing, unreadable or out of bounds."""


class DataError(FaceKeypointsError, ValueError):
    """A dataset is missing, corrupt or malformed."""


class ModelError(FaceKeypointsError, RuntimeError):
    """A model file or checkpoint is missing, corrupt or does not match."""
