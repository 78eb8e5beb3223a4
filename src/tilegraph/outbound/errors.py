"""A send that did not reach its channel, with the channel's last answer."""

from __future__ import annotations


class SendFailed(Exception):
    """`answer` is what the run records as DELIVERY_FAILED ("HTTP 503: ...", "SMTP 550 ...",
    "connection refused"); `retryable` says whether the same send may succeed later (a 5xx,
    a timeout) or never will (a 4xx, a permanent SMTP refusal, no SMTP server configured)."""

    def __init__(self, answer: str, *, retryable: bool) -> None:
        super().__init__(answer)
        self.answer = answer
        self.retryable = retryable

    def __repr__(self) -> str:
        return f"SendFailed({self.answer!r}, retryable={self.retryable})"
