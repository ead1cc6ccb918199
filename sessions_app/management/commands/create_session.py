"""python manage.py create_session --title T [--reuse] [--json]"""

import json as jsonlib

from django.core.management.base import BaseCommand

from sessions_app.links import connection_details
from sessions_app.services import do_create_session, do_reopen_session


class Command(BaseCommand):
    help = "Create a collaboration session and print its id, tokens, viewer URL and WebSocket URL."

    def add_arguments(self, parser):
        parser.add_argument("--title", default="", help="the session's title")
        parser.add_argument(
            "--reuse",
            action="store_true",
            help="reuse the newest active session with this title, with new tokens (the old ones still work)",
        )
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args, title, reuse, **options):
        session, word_secret, client_secret = (do_reopen_session if reuse else do_create_session)(title)
        details = connection_details(session, word_secret, client_secret)
        if options["json"]:
            self.stdout.write(jsonlib.dumps(details))
            return
        self.stdout.write(f"Session     {session.id}  {session.title}")
        self.stdout.write(f"Word token  {word_secret}")
        self.stdout.write(f"Client token {client_secret}")
        self.stdout.write(f"Viewer URL  {details['viewer_url']}")
        self.stdout.write(f"WebSocket   {details['ws_url']}")
        self.stdout.write(f"Publish code (paste into the Word add-in) {details['publish_code']}")
        self.stdout.write(f"Add-in manifest (sideload it in Word) {details['manifest_url']}")
        self.stdout.write("The tokens are shown once only; they are stored hashed.")
        if reuse:
            self.stdout.write("--reuse issues new tokens each time: earlier ones cannot be shown again.")
