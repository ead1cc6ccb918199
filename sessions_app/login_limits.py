"""How many failed sign-ins one user name or one client address may make (README "Limits").

The API's HTTP Basic and the admin's login form ask `LoginAttempts.refusal()` before they
check a password, so a refused guess costs no password hash, and call `note_failure()` after
a wrong one; successes are not counted. The counts live in Django's cache, each for one period
of its rate from its first failure: shared by every process with REDIS_URL, per process
without. When the cache does not answer, sign-ins are let through, as connection_limits.py
lets sockets in.
"""

import hashlib
import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

from .connection_limits import client_address

log = logging.getLogger(__name__)

PERIOD_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate):
    """("10/hour") → (10, 3600): how many failures in how many seconds."""
    number, _, period = rate.partition("/")
    return int(number), PERIOD_SECONDS[period[0]]


def request_address(request):
    """The client's IP address of an HTTP request, found as `client_address` finds a socket's."""
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    headers = [(b"x-forwarded-for", forwarded.encode("latin-1", "replace"))] if forwarded else []
    return client_address({"client": (request.META.get("REMOTE_ADDR") or None,), "headers": headers})


@dataclass(frozen=True)
class LoginRefusal:
    """A sign-in refused before its password is checked: by whom, and for how many seconds."""

    per: str  # "user" or "address"
    wait: int

    def describe(self):
        """The refusal in words, as the API and the admin's login form show it."""
        minutes = max(1, -(-self.wait // 60))
        later = f"{minutes} minute{'' if minutes == 1 else 's'}"
        who = "for this user name" if self.per == "user" else "from this address"
        return f"Too many failed sign-ins {who}; try again in {later}."


class LoginAttempts:
    """The failure counts one sign-in is checked against: its user name's and its address's.

    Each count lasts one period of its rate from its first failure; a second key holds when that is.
    """

    def __init__(self, username, address):
        self.counters = []  # (per, cache key, limit, period in seconds)
        name = hashlib.sha256(str(username).casefold().encode()).hexdigest()
        for per, ident, rate in (
            ("user", name, settings.COLLAB_LOGIN_FAILURES_PER_USER),
            ("address", address, settings.COLLAB_LOGIN_FAILURES_PER_ADDRESS),
        ):
            limit, period = parse_rate(rate)
            if limit and ident:
                self.counters.append((per, f"login-failures:{per}:{ident}", limit, period))

    def refusal(self):
        """A LoginRefusal if the user name or the address has used up its failures, else None."""
        keys = [key for _, key, _, _ in self.counters]
        try:
            values = cache.get_many(keys + [f"{key}:until" for key in keys])
        except Exception:
            log.warning("failed sign-ins not checked: the cache is unavailable", exc_info=True)
            return None
        now = time.time()
        for per, key, limit, period in self.counters:
            if values.get(key, 0) >= limit:
                return LoginRefusal(per, max(1, int(values.get(f"{key}:until", now + period) - now)))
        return None

    def note_failure(self):
        """Count one failed sign-in against the user name and the address."""
        now = time.time()
        try:
            for _, key, _, period in self.counters:
                # Neither key is replaced while it lasts: the count ends a period after its first failure.
                cache.add(f"{key}:until", now + period, timeout=period)
                cache.add(key, 0, timeout=period)
                try:
                    cache.incr(key)
                except ValueError:  # expired between the two calls
                    cache.set(key, 1, timeout=period)
        except Exception:
            log.warning("failed sign-in not counted: the cache is unavailable", exc_info=True)
