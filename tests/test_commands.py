"""create_session and end_session, as an operator runs them."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from sessions_app.models import CollabSession, SessionToken, new_session_id, random_urlsafe

pytestmark = pytest.mark.django_db


def test_create_session_json_prints_working_tokens(settings):
    settings.COLLAB_PUBLIC_URL = "https://collab.example.org"
    out = StringIO()
    call_command("create_session", "--title", "Board minutes", "--json", stdout=out)
    details = json.loads(out.getvalue())
    assert {"id", "word_token", "client_token", "viewer_url", "ws_url"} <= details.keys()
    session = CollabSession.objects.get(pk=details["id"])
    assert session.title == "Board minutes" and session.is_active
    assert (
        details["viewer_url"] == f"https://collab.example.org/s/{session.id}/#token={details['client_token']}"
    )
    assert details["ws_url"] == "wss://collab.example.org/ws"
    word = SessionToken.objects.for_secret(details["word_token"])
    client = SessionToken.objects.for_secret(details["client_token"])
    assert (word.session_id, word.role, client.session_id, client.role) == (
        session.id,
        "word",
        session.id,
        "client",
    )


def test_tokens_are_stored_only_as_hashes():
    out = StringIO()
    call_command("create_session", "--json", stdout=out)
    details = json.loads(out.getvalue())
    stored = list(SessionToken.objects.values_list("prefix", "digest"))
    for secret in (details["word_token"], details["client_token"]):
        assert all(secret != digest and secret not in digest for _, digest in stored)
        assert (secret[:8], SessionToken.objects.for_secret(secret).digest) in stored


def test_create_session_text_output_shows_how_to_connect():
    out = StringIO()
    call_command("create_session", "--title", "Demo", stdout=out)
    text = out.getvalue()
    assert "Viewer URL" in text and "/s/" in text and "#token=" in text
    assert "Publish code" in text and "collab:" in text
    assert "/addin/manifest.xml" in text


def test_end_session_ends_it_once():
    out = StringIO()
    call_command("create_session", "--json", stdout=out)
    session_id = json.loads(out.getvalue())["id"]
    call_command("end_session", session_id, stdout=StringIO())
    assert CollabSession.objects.get(pk=session_id).status == "ended"
    with pytest.raises(CommandError, match="already ended"):
        call_command("end_session", session_id, stdout=StringIO())
    with pytest.raises(CommandError, match="no session"):
        call_command("end_session", "missing", stdout=StringIO())


def test_ids_and_tokens_never_look_like_command_line_options():
    # One in 64 plain token_urlsafe values starts with "-", which argparse takes for an option.
    values = [new_session_id() for _ in range(2000)] + [random_urlsafe(32) for _ in range(2000)]
    assert not [value for value in values if value.startswith("-")]
