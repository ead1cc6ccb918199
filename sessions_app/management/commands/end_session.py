"""python manage.py end_session <session id>"""

from django.core.management.base import BaseCommand, CommandError

from sessions_app.models import CollabSession
from sessions_app.services import do_end_session


class Command(BaseCommand):
    help = "End a session: its sockets are told and closed, its HTML and revisions are kept."

    def add_arguments(self, parser):
        parser.add_argument("session_id")

    def handle(self, *args, session_id, **options):
        if not CollabSession.objects.filter(pk=session_id).exists():
            raise CommandError(f"no session {session_id}")
        if not do_end_session(session_id):
            raise CommandError(f"session {session_id} has already ended")
        self.stdout.write(f"Session {session_id} ended.")
