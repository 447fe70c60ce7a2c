"""The user's inference functions as steps of the /invocations pipeline (`invocations.py`).

A module (`user_code.py` finds it) may define any of

    model_fn(model_dir) -> model           input_fn(body, content_type) -> data
    predict_fn(data, model) -> prediction  output_fn(prediction, accept) -> body | (body, type)

or `transform_fn(model, body, content_type, accept)` instead of the last three. Each one
replaces the built-in step of that name; the built-in input_fn gives a user's predict_fn an
`xgb.DMatrix`, as the built-in algorithm's does. At request time an exception in user code is
a 500 whose traceback goes to the log; `ClientError("...", status=4xx)` (or any exception with
an integer `status_code`) answers the client with that status and message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from container.errors import ClientError, ContainerError, UserCodeError
from container.serving import headers
from container.serving.user_code import (
    INPUT_FN,
    OUTPUT_FN,
    PREDICT_FN,
    TRANSFORM_FN,
    UserCode,
)

Answer = tuple[int, list[tuple[str, str]], bytes]
"""A step's response: status, headers (no Content-Length) and body."""


@dataclass(frozen=True)
class UserHooks:
    """The user's module and the model its functions get (`model_fn`'s, or the booster)."""

    code: UserCode
    model: Any

    def defines(self, name: str) -> bool:
        return name in self.code.functions

    def call(self, name: str, *args: Any) -> Any:
        """Run one user function; its own 4xx passes to the client, anything else is a 500."""
        try:
            return self.code.functions[name](*args)
        except HTTPException:
            raise
        except ContainerError as exc:
            if 400 <= exc.status < 600:
                raise
            raise UserCodeError(
                f"{name} in {self.code.path} raised {type(exc).__name__} with status "
                f"{exc.status}, which is not an HTTP error status (400-599)."
            ) from exc
        except Exception as exc:
            status = getattr(exc, "status_code", None)
            if isinstance(status, int) and not isinstance(status, bool) and 400 <= status < 500:
                message = getattr(exc, "message", None)
                raise ClientError(
                    message if isinstance(message, str) else str(exc), status
                ) from exc
            raise UserCodeError(
                f"{name} in {self.code.path} raised {type(exc).__name__}: {exc}"
            ) from exc

    def input_step(self) -> Callable[[bytearray, str], Any]:
        return lambda body, content_type: self.call(INPUT_FN, bytes(body), content_type)

    def predict_step(self) -> Callable[[Any], Any]:
        return lambda data: self.call(PREDICT_FN, data, self.model)

    def output_step(self, default_accept: str) -> Callable[[Any, str, tuple[str, ...]], Answer]:
        def output(prediction: Any, accept: str, keys: tuple[str, ...]) -> Answer:
            result = self.call(OUTPUT_FN, prediction, accept)
            return self.answer(OUTPUT_FN, result, accept, default_accept)

        return output

    def transform_step(self, default_accept: str) -> Callable[[bytearray, str, str], Answer]:
        def transform(body: bytearray, content_type: str, accept: str) -> Answer:
            result = self.call(TRANSFORM_FN, self.model, bytes(body), content_type, accept)
            return self.answer(TRANSFORM_FN, result, accept, default_accept)

        return transform

    def answer(self, name: str, result: Any, accept: str, default_accept: str) -> Answer:
        """A user function's answer: bytes or str (sent as `accept`), (body, content_type), or
        a werkzeug/Flask `Response`."""
        if isinstance(result, Response):
            kept = [(k, v) for k, v in result.headers.items() if k.lower() != "content-length"]
            return result.status_code, kept, result.get_data()
        ranges = headers.parse_accept(accept)
        single = len(ranges) == 1 and "*" not in ranges[0].media_type
        content_type = ranges[0].media_type if single else default_accept
        if isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], str):
            result, content_type = result
        if isinstance(result, str):
            result = result.encode("utf-8")
        if not isinstance(result, bytes | bytearray | memoryview):
            raise UserCodeError(
                f"{name} in {self.code.path} returned {type(result).__name__}; it must return "
                "bytes, str, or a (body, content_type) tuple."
            )
        return 200, [("Content-Type", content_type)], bytes(result)


def user_accept(header: str | None, default_accept: str) -> str:
    """What a user function gets as `accept`: the header, or the default for none or */*."""
    value = (header or "").strip()
    return default_accept if value in ("", "*/*") else value


def user_content_type(header: str | None) -> str:
    """What a user function gets as `content_type`: the header as sent, or the default."""
    return (header or "").strip() or headers.DEFAULT_CONTENT_TYPE
