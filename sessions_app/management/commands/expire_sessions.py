"""manage.py expire_sessions: end abandoned sessions and delete old ended ones, e.g. from cron."""

from django.core.management.base import BaseCommand

from sessions_app.services import do_expire_sessions


class Command(BaseCommand):
    help = (
        "End sessions idle longer than COLLAB_SESSION_IDLE_TIMEOUT or older than COLLAB_SESSION_MAX_AGE, "
        "and delete sessions ended more than COLLAB_KEEP_ENDED days ago. Safe to run beside the servers."
    )

    def handle(self, *args, **options):
        ended, deleted = do_expire_sessions()
        self.stdout.write(f"{ended} session(s) ended, {deleted} ended session(s) deleted.")
