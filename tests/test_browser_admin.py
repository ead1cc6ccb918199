"""The session admin in real headless Chromium at a laptop's width, against a real daphne."""

import pytest

from tests.documents import flat_opc
from tests.pages import sign_in_to_admin
from tests.servers import create_superuser
from tests.test_browser_viewer import publish

pytestmark = [pytest.mark.browser, pytest.mark.integration]

WAIT_MS = 30_000
STAFF_PASSWORD = "staff-password-for-the-admin"  # noqa: S105
SESSIONS = "/admin/sessions_app/collabsession/"


@pytest.fixture(scope="module")
def operator(shared_daphne):
    create_superuser(shared_daphne.env, STAFF_PASSWORD, username="operator")
    return "operator"


@pytest.fixture
def admin_page(chromium, shared_daphne, operator):
    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    sign_in_to_admin(page, shared_daphne.url, operator, STAFF_PASSWORD, SESSIONS, WAIT_MS)
    yield page
    context.close()


def test_session_list_shows_every_column_beside_the_filters_at_1280_px(shared_daphne, admin_page):
    shared_daphne.create_session("A session with a rather long title for the list")
    admin_page.reload()
    created = admin_page.locator("#result_list th.column-created").bounding_box()
    filters = admin_page.locator("#changelist-filter").bounding_box()
    assert created is not None and filters is not None
    assert created["x"] + created["width"] <= filters["x"], (created, filters)
    assert created["x"] + created["width"] <= 1280
    assert admin_page.locator("#result_list td.field-created").first.is_visible()


def test_current_document_preview_uses_the_viewers_styles(shared_daphne, admin_page):
    session = shared_daphne.create_session("Previewed")
    publish(shared_daphne, session, flat_opc("Styled like the viewer"))
    admin_page.goto(f"{shared_daphne.url}{SESSIONS}{session['id']}/change/", timeout=WAIT_MS)
    admin_page.locator("summary", has_text="Current document").click()
    frame_element = admin_page.locator('iframe[sandbox=""]').first
    box = frame_element.bounding_box()
    assert box["width"] > 600 and box["height"] > 400, box
    frame = frame_element.element_handle().content_frame()
    frame.wait_for_function(
        "() => getComputedStyle(document.querySelector('.document')).fontFamily.includes('Charter')",
        timeout=WAIT_MS,
    )
    assert "Styled like the viewer" in frame.locator("#document").inner_text()
