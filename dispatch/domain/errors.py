"""One exception tree with stable machine codes.

Translated to HTTP in `dispatch.http.errors` and to Socket.IO acks in `signaling`,
each in exactly one place.
"""

from __future__ import annotations


class DispatchError(Exception):
    """A request we refuse; `code` is stable, `message` is for people."""

    code = "error"
    status = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def as_dict(self) -> dict[str, str | None]:
        return {"code": self.code, "message": self.message, "field": self.field}


class BadRequest(DispatchError):
    code = "bad_request"
    status = 400


class Unauthorized(DispatchError):
    code = "unauthorized"
    status = 401


class Forbidden(DispatchError):
    code = "forbidden"
    status = 403


class NotFound(DispatchError):
    code = "not_found"
    status = 404


class Conflict(DispatchError):
    code = "conflict"
    status = 409


class InvalidTransition(Conflict):
    code = "invalid_transition"


class PayloadTooLarge(DispatchError):
    code = "payload_too_large"
    status = 413


class UnsupportedMediaType(DispatchError):
    code = "unsupported_media_type"
    status = 415


class TryAgain(DispatchError):
    """Refused for now, not for good: the caller should send the same again later."""

    def __init__(
        self, message: str, *, field: str | None = None, retry_after_s: int | None = None
    ) -> None:
        super().__init__(message, field=field)
        self.retry_after_s = retry_after_s  # sent as Retry-After when known


class RateLimited(TryAgain):
    code = "rate_limited"
    status = 429


class ServiceBusy(TryAgain):
    """More is waiting to be written than the node will hold in memory: nothing of this
    request was kept, and the client's retry (same idempotency key) is safe."""

    code = "busy"
    status = 503


class StorageFull(TryAgain):
    """The disk that keeps evidence files has no room: the request was not kept (no row,
    no file), and the same request can be sent again once there is room."""

    code = "storage_full"
    status = 507


class SmsUnavailable(TryAgain):
    """No text message could be sent: no sender is configured, or the gateway did not
    take the message (after its retries)."""

    code = "sms_unavailable"
    status = 503
