"""The landing page at / and the 404 a WebSocket gets at a path collab does not serve."""

import pytest
from channels.testing import WebsocketCommunicator
from django.test import override_settings
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from collab.asgi import application
from sessions_app.models import CollabSession, SessionToken
from sessions_app.services import do_create_session, do_end_session
from tests.servers import Server

WAIT = 30


def links(html):
    return [part.split('"', 1)[0] for part in html.split('href="')[1:]]


@pytest.mark.django_db
def test_landing_page_says_what_collab_is_and_links_admin_and_api_docs(client):
    response = client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "mirrors a Word document live into web pages" in html
    assert {"/admin/", "/api/docs/", "/api/redoc/"} <= set(links(html))
    assert "create_session" in html


@pytest.mark.django_db
def test_landing_page_carries_the_viewer_pages_headers(client):
    response = client.get("/")
    policy = response["Content-Security-Policy"]
    assert "default-src 'none'" in policy
    assert "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert response["Referrer-Policy"] == "no-referrer"
    assert response["Cache-Control"] == "no-store"


@pytest.mark.django_db
@override_settings(DEBUG=True)
def test_landing_page_links_the_demo_sessions_viewer_in_development(client):
    session, _, _ = do_create_session("Demo session")
    html = client.get("/").content.decode()
    demo = [link for link in links(html) if f"/s/{session.id}/#token=" in link]
    assert len(demo) == 1
    secret = demo[0].split("#token=", 1)[1]
    token = SessionToken.objects.for_secret(secret)
    assert token.session_id == session.id
    assert token.role == SessionToken.Role.CLIENT


@pytest.mark.django_db
@override_settings(DEBUG=True)
def test_landing_page_has_no_demo_link_once_the_demo_session_ended(client):
    session, _, _ = do_create_session("Demo session")
    do_end_session(session.id)
    html = client.get("/").content.decode()
    assert "/s/" not in html
    assert session.tokens.count() == 2  # only the session's own word and client tokens


@pytest.mark.django_db
def test_landing_page_has_no_demo_link_without_debug(client):
    do_create_session("Demo session")
    html = client.get("/").content.decode()
    assert "/s/" not in html
    assert "Add session" in html
    assert CollabSession.objects.get().tokens.count() == 2  # only the session's own word and client tokens


async def test_socket_to_unknown_path_is_refused_without_an_error():
    communicator = WebsocketCommunicator(application, "/no-such-socket")
    connected, _ = await communicator.connect()
    assert not connected
    await communicator.disconnect()


@pytest.fixture(scope="module")
def plain_daphne(integration_database_url):
    server = Server({"DATABASE_URL": integration_database_url})
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.mark.parametrize("path", ["/no-such-socket", "/ws/extra", "/"])
async def test_socket_to_unknown_path_gets_404_and_no_traceback(plain_daphne, path):
    with pytest.raises(InvalidStatus) as refused:
        async with connect(f"ws://127.0.0.1:{plain_daphne.port}{path}", open_timeout=WAIT):
            pass
    assert refused.value.response.status_code == 404
    # The known path still opens, and the server logged no error for the refused one.
    async with connect(plain_daphne.ws_url, open_timeout=WAIT):
        pass
    output = plain_daphne.output_tail(200)
    assert "Traceback" not in output
    assert "No route found" not in output
