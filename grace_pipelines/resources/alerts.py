"""Alerts: a Slack-compatible webhook (JSON POST with a `text` field) for SLA escalations.

The URL is a credential (Slack webhook URLs carry their token), so it never reaches logs,
metadata or exceptions: failures are reported by status code or error type only. Delivery is
retried a few times with backoff (tenacity); an alert that cannot be delivered is reported to
the caller, never raised into the sensor that sent it.
"""

from __future__ import annotations

from typing import Any

import dagster as dg
from pydantic import Field


class Alerts(dg.ConfigurableResource):
    webhook_url: str | None = Field(None, description="Slack-compatible incoming webhook; none: alerts go to logs only")
    timeout_s: float = 5.0
    attempts: int = 3

    @property
    def enabled(self) -> bool:
        return bool(self.webhook_url)

    def send(self, text: str, **fields: Any) -> tuple[bool, str]:
        """POST `{"text": text, **fields}`; returns (delivered, what happened without the URL)."""
        if not self.webhook_url:
            return False, "no webhook configured"
        import requests
        from tenacity import RetryError, retry, retry_if_exception_type, stop_after_attempt, wait_exponential

        class _Retryable(Exception):
            pass

        @retry(
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=0.2, max=2),
            retry=retry_if_exception_type(_Retryable),
        )
        def post() -> int:
            try:
                response = requests.post(self.webhook_url, json={"text": text, **fields}, timeout=self.timeout_s)
            except requests.RequestException as exc:
                raise _Retryable(type(exc).__name__) from None
            if response.status_code >= 500 or response.status_code == 429:
                raise _Retryable(f"HTTP {response.status_code}")
            return response.status_code

        try:
            status = post()
        except RetryError as exc:
            return False, f"not delivered after {self.attempts} attempts ({exc.last_attempt.exception()})"
        return (200 <= status < 300), f"HTTP {status}"
