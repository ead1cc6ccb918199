"""python manage.py end_session <session id>"""

from django.core.management.base import BaseCommand, CommandError

from sessions_app.protocol import SESSION_ENDED
from sessions_app.services import do_end_session


class Command(BaseCommand):
    help = "End a session: its sockets are told and closed, its HTML and revisions are kept."

    def add_arguments(self, parser):
        parser.add_argument("session_id")

    def handle(self, *args, session_id, **options):
        # An unknown session and one that has already ended get the one wording the API uses too.
        if not do_end_session(session_id):
            raise CommandError(f"{SESSION_ENDED}: {session_id}")
        self.stdout.write(f"Session {session_id} ended.")
