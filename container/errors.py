"""Typed errors. Each carries the HTTP status it is rendered with; one handler renders them all.

Training uses the same classes: a `ClientError` is the user's mistake (bad hyperparameter, bad
data) and its message is the sentence written first to `output/failure`.
"""

from __future__ import annotations


class ContainerError(Exception):
    """Base class: a message meant for the user, and the HTTP status it maps to."""

    status: int = 500

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class ClientError(ContainerError):
    """The caller's mistake: bad request, bad hyperparameter, bad training data."""

    status = 400


class BadRequest(ClientError):
    status = 400


class MethodNotAllowed(ClientError):
    status = 405


class NotAcceptable(ClientError):
    status = 406


class PayloadTooLarge(ClientError):
    status = 413


class UnsupportedMediaType(ClientError):
    status = 415


class ServerError(ContainerError):
    """A fault on our side. Its message is logged, never shown with a traceback to clients."""

    status = 500


class ModelLoadError(ServerError):
    """The model folder holds no model we can (or may) load."""


class UserCodeError(ServerError):
    """The user's own inference code failed or broke its contract; the traceback is logged.

    User code that wants the client to see its message raises `ClientError("...", status=422)`
    (any 4xx) instead, or any exception with an integer `status_code` attribute.
    """


class DistributedError(ContainerError):
    """Training on several hosts could not start or go on: a peer unreachable, gone or failed."""

    status = 500
