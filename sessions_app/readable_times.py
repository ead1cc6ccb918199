"""Times as staff read them in the admin: "31 Dec 2026, 05:34 UTC", and how far away that is."""

from django.utils import dateformat, timezone
from django.utils.timesince import timesince


def clock_time(value):
    """A moment in the site's time zone to the minute, like "31 Dec 2026, 05:34 UTC"; "never" for None."""
    if value is None:
        return "never"
    return dateformat.format(timezone.localtime(value), "j M Y, H:i T")


def distance(value, now=None):
    """How far a moment is from now, like "in 4 weeks", "3 hours ago" or "just now"."""
    now = now or timezone.now()
    if abs((value - now).total_seconds()) < 60:
        return "just now"
    if value > now:
        return f"in {timesince(now, value, depth=1)}"
    return f"{timesince(value, now, depth=1)} ago"


def readable_time(value, now=None):
    """A moment with its distance from now: "31 Dec 2026, 05:34 UTC (in 4 weeks)"; "never" for None."""
    if value is None:
        return "never"
    return f"{clock_time(value)} ({distance(value, now)})"
