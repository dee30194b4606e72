"""API key authentication as Kernel Memory's web service does it.

The key travels in one configurable header (default `Authorization`, with or
without a `Bearer ` prefix). Two keys are accepted at once so a key can be
rotated without downtime. With no key configured, authentication is off.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence

from kernel_memory.errors import AuthenticationError, AuthorizationError
from kernel_memory.settings import HttpSettings

_BEARER_PREFIX = "bearer "


class ApiKeyAuth:
    def __init__(self, *, header: str, keys: Sequence[str]) -> None:
        self.header = header
        self._keys = [key.encode() for key in keys if key]

    @classmethod
    def from_settings(cls, settings: HttpSettings) -> ApiKeyAuth:
        keys = [
            secret.get_secret_value()
            for secret in (settings.api_key1, settings.api_key2)
            if secret is not None
        ]
        return cls(header=settings.api_key_header, keys=keys)

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def check(self, headers: Mapping[str, str]) -> None:
        """Raise `AuthenticationError` (401) with no key, `AuthorizationError` (403) with a wrong one."""
        if not self.enabled:
            return
        presented = (headers.get(self.header) or "").strip()
        if not presented:
            raise AuthenticationError(f"missing API key: send it in the '{self.header}' header")
        if presented.lower().startswith(_BEARER_PREFIX):
            presented = presented[len(_BEARER_PREFIX) :].strip()
        if not self._matches(presented.encode()):
            raise AuthorizationError(f"invalid API key in the '{self.header}' header")

    def _matches(self, presented: bytes) -> bool:
        # Compare against every key, without stopping early, so timing reveals neither key nor which one matched.
        matched = False
        for key in self._keys:
            matched |= hmac.compare_digest(presented, key)
        return matched
