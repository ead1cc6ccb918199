"""python manage.py create_session --title T [--reuse] [--publish FILE] [--json]"""

import json as jsonlib
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from conversion import ConversionError, convert_payload
from sessions_app.links import connection_details
from sessions_app.publishing import conversion_limits
from sessions_app.services import do_create_session, do_publish_document, do_reopen_session


class Command(BaseCommand):
    help = "Create a collaboration session and print its id, tokens, viewer URL and WebSocket URL."

    def add_arguments(self, parser):
        parser.add_argument("--title", default="", help="the session's title")
        parser.add_argument(
            "--reuse",
            action="store_true",
            help="reuse the newest active session with this title, with new tokens (the old ones still work)",
        )
        parser.add_argument(
            "--publish",
            metavar="FILE",
            help="a .docx to publish as the session's first version, if it has none yet",
        )
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args, title, reuse, publish=None, **options):
        session, word_secret, client_secret = (do_reopen_session if reuse else do_create_session)(title)
        if publish and session.version == 0:
            try:
                converted = convert_payload(Path(publish).read_bytes(), "docx", conversion_limits())
            except (OSError, ConversionError) as error:
                raise CommandError(f"{publish} could not be published: {error}") from error
            session.version = do_publish_document(session.id, converted)
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
