"""The viewer page, the add-in's manifest and task pane, and static files, through Django's test client."""

import re
import struct
import uuid
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from defusedxml import ElementTree
from django.test import override_settings

OFFICE = "{http://schemas.microsoft.com/office/appforoffice/1.1}"
BT = "{http://schemas.microsoft.com/office/officeappbasictypes/1.0}"
OV = "{http://schemas.microsoft.com/office/taskpaneappversionoverrides}"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"

# The children of a TaskPaneApp's OfficeApp, in the order the manifest schema's sequence demands.
TASKPANE_APP_SEQUENCE = [
    "Id",
    "AlternateId",
    "Version",
    "ProviderName",
    "DefaultLocale",
    "DisplayName",
    "Description",
    "IconUrl",
    "HighResolutionIconUrl",
    "SupportUrl",
    "AppDomains",
    "Hosts",
    "Requirements",
    "DefaultSettings",
    "Permissions",
    "AllowSnapshot",
    "VersionOverrides",
]
REQUIRED = {"Id", "Version", "ProviderName", "DefaultLocale", "DisplayName", "Description", "DefaultSettings"}


class Scripts(HTMLParser):
    """The <script> elements of a page: their src and whether they carry inline code."""

    def __init__(self, html):
        super().__init__()
        self.scripts = []
        self.inline_handlers = []
        self._open = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.inline_handlers += [name for name in attributes if name.startswith("on")]
        if tag == "script":
            self._open = {"src": attributes.get("src"), "code": ""}
            self.scripts.append(self._open)

    def handle_data(self, data):
        if self._open is not None:
            self._open["code"] += data

    def handle_endtag(self, tag):
        if tag == "script":
            self._open = None


def csp(response):
    """The Content-Security-Policy header as {directive: [sources]}."""
    policy = {}
    for directive in response["Content-Security-Policy"].split(";"):
        name, *sources = directive.split()
        policy[name] = sources
    return policy


# The viewer page


def test_viewer_page_has_a_strict_csp_and_no_inline_script(client):
    response = client.get("/s/AbCdEf123_-x/")
    assert response.status_code == 200
    policy = csp(response)
    assert policy["script-src"] == ["'self'"]
    assert policy["default-src"] == ["'none'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["img-src"] == ["'self'", "data:"]
    assert "'unsafe-inline'" not in policy["style-src"]
    assert response["Referrer-Policy"] == "no-referrer"
    assert response["Cache-Control"] == "no-store"
    page = Scripts(response.content.decode())
    assert [script["src"] for script in page.scripts] == [
        "/static/shared/live-socket.js",
        "/static/shared/html-patch.js",
        "/static/viewer/viewer.js",
    ]
    assert all(not script["code"].strip() for script in page.scripts)
    assert page.inline_handlers == []
    assert 'data-session-id="AbCdEf123_-x"' in response.content.decode()


@override_settings(COLLAB_PUBLIC_URL="https://collab.example.org", ALLOWED_HOSTS=["collab.example.org"])
def test_viewer_may_connect_only_to_its_own_websocket(client):
    response = client.get("/s/abc/", HTTP_HOST="collab.example.org")
    assert csp(response)["connect-src"] == ["'self'", "wss://collab.example.org", "ws://collab.example.org"]


@pytest.mark.django_db
def test_viewer_page_does_not_tell_whether_a_session_exists(client, django_assert_num_queries):
    from sessions_app.models import CollabSession

    session = CollabSession.objects.create(title="Quarterly numbers")
    with django_assert_num_queries(0):
        known = client.get(f"/s/{session.id}/").content.decode()
    unknown = client.get("/s/unknown-session/").content.decode()
    assert "Quarterly numbers" not in known
    assert known.replace(session.id, "ID") == unknown.replace("unknown-session", "ID")


@pytest.mark.parametrize("path", ["/s/has.dot/", "/s/" + "x" * 65 + "/", "/s//", "/s/a/b/"])
def test_viewer_urls_with_impossible_session_ids_are_not_found(client, path):
    assert client.get(path).status_code == 404


def test_viewer_page_without_trailing_slash_redirects(client):
    response = client.get("/s/abc")
    assert response.status_code == 301
    assert response["Location"] == "/s/abc/"


def test_viewer_page_only_answers_get_and_head(client):
    assert client.head("/s/abc/").status_code == 200
    assert client.post("/s/abc/").status_code == 405


# Static files


@override_settings(DEBUG=False)
@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/static/viewer/viewer.js", "text/javascript"),
        ("/static/shared/live-socket.js", "text/javascript"),
        ("/static/viewer/viewer.css", "text/css"),
        ("/static/addin/taskpane.js", "text/javascript"),
        ("/static/addin/taskpane.css", "text/css"),
        ("/static/addin/icon-32.png", "image/png"),
        ("/static/admin/css/base.css", "text/css"),
    ],
)
def test_static_files_are_served_without_debug(client, path, content_type):
    response = client.get(path)
    assert response.status_code == 200
    assert response["Content-Type"].startswith(content_type)
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content)


@override_settings(DEBUG=False)
@pytest.mark.parametrize(
    "path",
    [
        "/static/viewer/missing.js",
        "/static/../collab/settings.py",
        "/static/%2e%2e/manage.py",
        "/static/viewer/",
    ],
)
def test_static_files_outside_the_static_directories_are_not_found(client, path):
    assert client.get(path).status_code == 404


# The add-in manifest


def manifest(client):
    response = client.get("/addin/manifest.xml")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/xml; charset=utf-8"
    return ElementTree.fromstring(response.content)


@override_settings(COLLAB_PUBLIC_URL="https://collab.example.org:8443")
def test_manifest_is_a_word_taskpane_app_served_from_the_public_url(client):
    root = manifest(client)
    public = "https://collab.example.org:8443"
    assert root.tag == f"{OFFICE}OfficeApp"
    assert root.get(XSI_TYPE) == "TaskPaneApp"
    children = [child.tag.removeprefix(OFFICE).removeprefix(OV) for child in root]
    assert set(children) >= REQUIRED
    assert children == [name for name in TASKPANE_APP_SEQUENCE if name in children]
    assert str(uuid.UUID(root.findtext(f"{OFFICE}Id"))) == root.findtext(f"{OFFICE}Id")
    assert re.fullmatch(r"\d+(\.\d+){0,3}", root.findtext(f"{OFFICE}Version"))
    assert root.find(f"{OFFICE}DefaultSettings/{OFFICE}SourceLocation").get("DefaultValue") == (
        f"{public}/addin/taskpane.html"
    )
    assert [host.get("Name") for host in root.iterfind(f"{OFFICE}Hosts/{OFFICE}Host")] == ["Document"]
    assert root.findtext(f"{OFFICE}Permissions") == "ReadWriteDocument"
    assert [domain.text for domain in root.iterfind(f"{OFFICE}AppDomains/{OFFICE}AppDomain")] == [public]
    sets = root.find(f"{OFFICE}Requirements/{OFFICE}Sets")
    assert [(s.get("Name"), s.get("MinVersion")) for s in sets] == [("WordApi", "1.3")]
    for element in ("DisplayName", "Description", "IconUrl", "HighResolutionIconUrl", "SupportUrl"):
        value = root.find(f"{OFFICE}{element}").get("DefaultValue")
        assert value, element
        if element.endswith("Url"):
            assert value.startswith(f"{public}/"), element


def png_size(content):
    assert content[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", content[16:24])


@override_settings(COLLAB_PUBLIC_URL="https://collab.example.org")
def test_manifest_icons_are_served_pngs_of_the_sizes_office_asks_for(client):
    root = manifest(client)
    icons = {
        root.find(f"{OFFICE}IconUrl").get("DefaultValue"): 32,
        root.find(f"{OFFICE}HighResolutionIconUrl").get("DefaultValue"): 64,
    }
    for image in root.iterfind(f".//{BT}Images/{BT}Image"):
        icons[image.get("DefaultValue")] = int(image.get("id").rsplit("x", 1)[1])
    assert len(icons) == 4  # 32 and 64 for the add-in list, 16, 32 and 80 for the ribbon
    for url, size in icons.items():
        response = client.get(urlsplit(url).path)
        assert response.status_code == 200, url
        assert png_size(b"".join(response.streaming_content)) == (size, size), url


def test_manifest_version_overrides_refer_only_to_defined_resources(client):
    root = manifest(client)
    overrides = root.find(f"{OV}VersionOverrides")
    assert overrides.get(XSI_TYPE) == "VersionOverridesV1_0"
    resources = overrides.find(f"{OV}Resources")
    defined = {element.get("id") for element in resources.iter() if element.get("id")}
    used = {element.get("resid") for element in overrides.iter() if element.get("resid")}
    assert used and used <= defined
    for length, limit in (("ShortStrings", 125), ("LongStrings", 250)):
        for string in resources.iterfind(f"{BT}{length}/{BT}String"):
            assert 0 < len(string.get("DefaultValue")) <= limit
    taskpane_url = resources.find(f"{BT}Urls/{BT}Url[@id='Taskpane.Url']").get("DefaultValue")
    assert taskpane_url == root.find(f"{OFFICE}DefaultSettings/{OFFICE}SourceLocation").get("DefaultValue")
    action = overrides.find(f".//{OV}Control/{OV}Action")
    assert action.get(XSI_TYPE) == "ShowTaskpane"


def test_manifest_id_is_stable_per_public_url(client):
    first = manifest(client).findtext(f"{OFFICE}Id")
    assert manifest(client).findtext(f"{OFFICE}Id") == first
    with override_settings(COLLAB_PUBLIC_URL="https://other.example.org"):
        assert manifest(client).findtext(f"{OFFICE}Id") != first


@override_settings(COLLAB_PUBLIC_URL="https://a.example.org/?x=<&>")
def test_manifest_escapes_the_public_url(client):
    root = manifest(client)
    source = root.find(f"{OFFICE}DefaultSettings/{OFFICE}SourceLocation").get("DefaultValue")
    assert source == "https://a.example.org/?x=<&>/addin/taskpane.html"


# The task pane


def test_taskpane_loads_office_js_from_microsoft_and_nothing_inline(client):
    response = client.get("/addin/taskpane.html")
    assert response.status_code == 200
    policy = csp(response)
    assert policy["script-src"] == ["'self'", "https://appsforoffice.microsoft.com"]
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    assert "X-Frame-Options" not in response
    assert response["Referrer-Policy"] == "no-referrer"
    page = Scripts(response.content.decode())
    assert [script["src"] for script in page.scripts] == [
        "https://appsforoffice.microsoft.com/lib/1/hosted/office.js",
        "/static/shared/live-socket.js",
        "/static/addin/taskpane.js",
    ]
    assert all(not script["code"].strip() for script in page.scripts)
    assert page.inline_handlers == []


def test_taskpane_may_be_framed_by_office_on_the_web_only(client):
    # Word on the web shows the task pane in a frame of its own domains; no other site may frame it.
    assert csp(client.get("/addin/taskpane.html"))["frame-ancestors"] == [
        "https://*.officeapps.live.com",
        "https://*.office.com",
        "https://*.office365.com",
        "https://*.sharepoint.com",
        "https://*.microsoft365.com",
        "https://*.cloud.microsoft",
        "https://onedrive.live.com",
        "https://teams.microsoft.com",
    ]
