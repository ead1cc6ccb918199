"""How the HTML is kept: on PostgreSQL, compressed with lz4 (migration 0004), read back unchanged."""

import pytest
from django.db import connection

from conversion import Converted
from sessions_app.models import CollabSession, Revision
from sessions_app.services import do_create_session, store_document

pytestmark = pytest.mark.django_db

HTML_COLUMNS = (("sessions_app_collabsession", "html"), ("sessions_app_revision", "html"))


def compression_of(table, column):
    """The column's compression method as pg_attribute records it ('l' lz4, 'p' pglz, '' default)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attcompression FROM pg_attribute WHERE attrelid = %s::regclass AND attname = %s",
            [table, column],
        )
        return cursor.fetchone()[0]


def test_postgresql_keeps_the_html_with_lz4():
    if connection.vendor != "postgresql":
        pytest.skip("lz4 compression is PostgreSQL's; the PostgreSQL pass of the suite runs this")
    assert {compression_of(*column) for column in HTML_COLUMNS} == {"l"}


def test_a_long_document_reads_back_exactly_as_stored():
    session, _, _ = do_create_session("Long")
    html = "".join(f"<p>Paragraph {n}: {'word ' * 40}</p>" for n in range(300))
    converted = Converted(html, [], len(html), len(html.encode()), 0.01)
    version, _ = store_document(session.id, converted)
    assert CollabSession.objects.get(pk=session.id).html == html
    assert Revision.objects.get(session_id=session.id, version=version).html == html
