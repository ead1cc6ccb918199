"""python manage.py create_integration_key --name N [--max-sessions K] [--json]"""

import json as jsonlib

from django.core.management.base import BaseCommand, CommandError

from sessions_app.services import do_create_integration_key


class Command(BaseCommand):
    help = "Create an integration key for a host application's Edit in Word plugin and print it once."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True, help="who the key is for, as the admin shows it")
        parser.add_argument(
            "--max-sessions", type=int, default=0, help="the most active sessions the key may hold; 0: no cap"
        )
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args, name, max_sessions, **options):
        name = name.strip()
        if not name or len(name) > 100:
            raise CommandError("--name must be 1 to 100 characters")
        if not 0 <= max_sessions <= 1_000_000:
            raise CommandError("--max-sessions must be between 0 and 1000000")
        key, secret = do_create_integration_key(name, max_sessions)
        if options["json"]:
            self.stdout.write(jsonlib.dumps({"id": key.pk, "name": key.name, "key": secret}))
            return
        self.stdout.write(f"Integration key {key.pk}  {key.name}")
        self.stdout.write(f"Key          {secret}")
        cap = key.max_sessions or "no cap"
        self.stdout.write(f"Max sessions {cap}")
        self.stdout.write(
            "The key is shown once only; it is stored hashed. Give it to the plugin as editinword_token."
        )
