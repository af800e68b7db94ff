"""Error answers in OpenAI's shape (`{"error": {"message", "type", "code", "param"}}`), which its
clients turn into typed exceptions, and the handlers that give every failure that shape."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException


def error_body(message: str, *, kind: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    """An error in OpenAI's shape."""
    return {"error": {"message": message, "type": kind, "code": code, "param": param}}


class ApiError(Exception):
    """An error answered with `status` and `error_body(message, kind=kind, code=code)`."""

    def __init__(self, status: int, message: str, *, kind: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.code = status, message, kind, code


def add_error_handlers(app: FastAPI, log: logging.Logger) -> None:
    """Every failure answers in the error shape; unexpected ones say only that the log has the details."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        headers = {"Retry-After": "5"} if exc.status == 503 else None
        return JSONResponse(error_body(exc.message, kind=exc.kind, code=exc.code), exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return JSONResponse(error_body(problems, kind="invalid_request_error", code="invalid_request"), 400)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse(error_body(str(exc.detail), kind="invalid_request_error"), exc.status_code)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("request failed", extra={"error_type": type(exc).__name__})
        return JSONResponse(error_body("internal error; the service log has the details", kind="server_error"), 500)
