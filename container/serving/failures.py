"""How every failure is answered: `{"error": ...}` with the status the error carries.

One function for both ways a request is served (Flask's routes and the built-in /invocations,
`invocations.py`): a client's mistake keeps its sentence and status; anything else is a generic
500 whose traceback goes to the log only.
"""

from __future__ import annotations

import json
import logging

from werkzeug.exceptions import HTTPException

from container.errors import ContainerError

log = logging.getLogger(__name__)

SERVER_FAULT = "Internal server error; see the server log."


def error_answer(error: Exception, method: str, path: str) -> tuple[int, bytes]:
    """The status and JSON body that answer `error`, raised while serving `method path`."""
    if isinstance(error, ContainerError) and error.status < 500:
        return error.status, error_document(error.message)
    if isinstance(error, HTTPException) and (error.code or 500) < 500:
        return error.code or 500, error_document(error.description or "")
    log.error("Failed to answer %s %s", method, path, exc_info=error)
    return 500, error_document(SERVER_FAULT)


def error_document(message: str) -> bytes:
    """`{"error": message}` as the response body."""
    return json.dumps({"error": message}).encode()
