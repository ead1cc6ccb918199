"""create_session, end_session and publish's token sources, as an operator runs them."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from sessions_app.management.commands.publish import Command as PublishCommand
from sessions_app.management.commands.publish import ServerError
from sessions_app.models import CollabSession, SessionToken, new_session_id, random_urlsafe
from sessions_app.protocol import SESSION_ENDED
from tests.documents import CORPUS

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
    # An ended session and an unknown one get the one wording collab's surfaces use.
    with pytest.raises(CommandError) as ended:
        call_command("end_session", session_id, stdout=StringIO())
    assert str(ended.value) == f"{SESSION_ENDED}: {session_id}"
    with pytest.raises(CommandError) as missing:
        call_command("end_session", "missing", stdout=StringIO())
    assert str(missing.value) == f"{SESSION_ENDED}: missing"


def test_ids_and_tokens_never_look_like_command_line_options():
    # One in 64 plain token_urlsafe values starts with "-", which argparse takes for an option.
    values = [new_session_id() for _ in range(2000)] + [random_urlsafe(32) for _ in range(2000)]
    assert not [value for value in values if value.startswith("-")]


# publish: where the token comes from (tests/test_integration_daphne.py publishes with each)


def test_publish_without_a_token_says_where_to_give_one(tmp_path, monkeypatch):
    monkeypatch.delenv("COLLAB_TOKEN", raising=False)
    with pytest.raises(CommandError, match="give --token-file FILE or set COLLAB_TOKEN"):
        call_command("publish", "a-session", str(tmp_path / "document.docx"))


def test_publish_explains_a_token_file_it_cannot_use(tmp_path):
    document = str(tmp_path / "document.docx")
    with pytest.raises(CommandError, match="cannot read the token file .*missing: No such file"):
        call_command("publish", "a-session", document, "--token-file", str(tmp_path / "missing"))
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(CommandError, match="token file .*empty is empty"):
        call_command("publish", "a-session", document, "--token-file", str(tmp_path / "empty"))


def test_publish_help_says_that_a_token_on_the_command_line_is_visible_to_others():
    help_text = " ".join(PublishCommand().create_parser("manage.py", "publish").format_help().split())
    assert "visible to every user of this machine in the process list" in help_text
    assert "--token-file" in help_text and "COLLAB_TOKEN" in help_text


def test_create_session_reuse_returns_the_active_session_with_fresh_tokens():
    def create(*extra):
        out = StringIO()
        call_command("create_session", "--title", "Demo session", "--reuse", "--json", *extra, stdout=out)
        return json.loads(out.getvalue())

    call_command("create_session", "--title", "Other", stdout=StringIO())
    first, second = create(), create()
    assert first["id"] == second["id"]
    assert CollabSession.objects.filter(title="Demo session").count() == 1
    assert first["word_token"] != second["word_token"] and first["client_token"] != second["client_token"]
    for secret in (first["word_token"], second["word_token"], second["client_token"]):
        assert SessionToken.objects.for_secret(secret).session_id == first["id"]

    call_command("end_session", first["id"], stdout=StringIO())
    assert create()["id"] != first["id"]


def test_create_session_reuse_skips_a_session_past_its_expiry(settings):
    settings.COLLAB_SESSION_MAX_AGE = 3600
    out = StringIO()
    call_command("create_session", "--title", "Demo session", "--json", stdout=out)
    old = json.loads(out.getvalue())["id"]
    CollabSession.objects.filter(pk=old).update(created_at=timezone.now() - timedelta(hours=2))
    out = StringIO()
    call_command("create_session", "--title", "Demo session", "--reuse", stdout=out)
    assert old not in out.getvalue()
    assert "--reuse issues new tokens" in out.getvalue()


def test_create_session_publishes_a_first_version_only_into_an_empty_session():
    document = str(CORPUS / "docx" / "mammoth-simple-list.docx")

    def create():
        out = StringIO()
        call_command(
            "create_session",
            "--title",
            "Demo session",
            "--reuse",
            "--publish",
            document,
            "--json",
            stdout=out,
        )
        return CollabSession.objects.get(pk=json.loads(out.getvalue())["id"])

    session = create()
    assert session.version == 1 and "<li>" in session.html
    # A later run leaves what was published since alone.
    CollabSession.objects.filter(pk=session.pk).update(html="<p>mine</p>", version=7)
    assert create().html == "<p>mine</p>"


def test_create_session_refuses_a_file_it_cannot_publish(tmp_path):
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(b"%PDF-1.7 not a word document")
    with pytest.raises(CommandError, match="PDF"):
        call_command("create_session", "--title", "T", "--publish", str(pdf), stdout=StringIO())


@pytest.mark.parametrize(
    ("code", "wire_text"), [("E1001", "Session not found"), ("E1006", "Session expired or removed")]
)
def test_publish_tells_of_an_unknown_or_ended_session_in_the_one_wording(code, wire_text):
    # The socket's texts are the contract's; the command says what the API and end_session say.
    assert str(ServerError(code, wire_text)) == f"{code}: {SESSION_ENDED}"
    assert str(ServerError("E1003", "Invalid token")) == "E1003: Invalid token"
