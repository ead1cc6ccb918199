"""The REST API's OpenAPI schema: valid, complete, browsable offline, and true of a live server."""

import base64
import re
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from django.contrib.staticfiles import finders
from openapi_spec_validator import validate
from rest_framework.test import APIClient

from tests.servers import create_superuser

STAFF_PASSWORD = "schemathesis-staff-password"  # noqa: S105
# Conformance checks: no 5xx, and every status, content type, header and body as the schema says.
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
    ]
)
SCHEMATHESIS_SECONDS = 25  # per run; two runs


@pytest.fixture
def schema():
    response = APIClient().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def test_schema_passes_openapi_spec_validator(schema):
    assert schema["openapi"].startswith("3.")
    validate(schema)


def test_schema_describes_every_endpoint_of_the_protocol(schema):
    operations = {(path, method) for path, item in schema["paths"].items() for method in item}
    assert operations == {
        ("/api/sessions/", "get"),
        ("/api/sessions/", "post"),
        ("/api/sessions/{session_id}/", "get"),
        ("/api/sessions/{session_id}/tokens/", "post"),
        ("/api/sessions/{session_id}/tokens/{token_id}/", "delete"),
        ("/api/sessions/{session_id}/end/", "post"),
        ("/api/sessions/{session_id}/html", "get"),
        ("/api/sessions/{session_id}/document", "put"),
        ("/api/sessions/{session_id}/revisions/", "get"),
        ("/api/integration-keys/", "get"),
        ("/api/integration-keys/", "post"),
        ("/api/integration-keys/{key_id}/", "delete"),
        ("/api/convert/html-docx", "post"),
        ("/api/convert/docx-html", "post"),
    }
    document = schema["paths"]["/api/sessions/{session_id}/document"]["put"]
    assert set(document["requestBody"]["content"]) == {
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/xml",
    }
    assert "422" in document["responses"]
    assert (
        "text/html"
        in schema["paths"]["/api/sessions/{session_id}/html"]["get"]["responses"]["200"]["content"]
    )
    assert set(schema["components"]["securitySchemes"]) == {
        "basicAuth",
        "cookieAuth",
        "sessionToken",
        "integrationKey",
    }
    docx_html = schema["paths"]["/api/convert/docx-html"]["post"]
    assert set(docx_html["requestBody"]["content"]) == {"multipart/form-data"}
    assert {"200", "400", "401", "413", "422"} <= set(docx_html["responses"])
    html_docx = schema["paths"]["/api/convert/html-docx"]["post"]
    assert set(html_docx["responses"]["200"]["content"]) == {
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    }


@pytest.mark.parametrize("page", ["/api/docs/", "/api/redoc/"])
def test_docs_pages_load_their_assets_from_our_static_files(page):
    response = APIClient().get(page)
    assert response.status_code == 200
    html = response.content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css|png))"', html)
    assert assets, html
    for asset in assets:
        assert asset.startswith("/static/drf_spectacular_sidecar/"), asset
        assert finders.find(asset.removeprefix("/static/")), f"{asset} is not among our static files"
    assert "cdn." not in html
    # Nothing from another host: no fonts, no logo, no preconnect.
    assert not re.search(r"""(?:src|href)=["'](?:https?:)?//""", html), html


def schemathesis(workdir, *args, config=None):
    """Run the schemathesis CLI in workdir (where it keeps its cache); its exit code and output."""
    command = [sys.executable, "-m", "schemathesis.cli"]
    if config:
        command += ["--config-file", str(config)]
    command += [
        "run",
        *args,
        "--checks",
        CHECKS,
        "--max-examples",
        "15",
        "--max-time",
        str(SCHEMATHESIS_SECONDS),
        "--request-timeout",
        "30",
        "--no-shrink",
        "--no-color",
    ]
    done = subprocess.run(
        command,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=SCHEMATHESIS_SECONDS + 60,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


@pytest.mark.integration
def test_schemathesis_finds_no_server_errors_or_schema_violations(daphne, tmp_path):
    # Token requests are throttled; here they should reach the code behind the throttle.
    server = daphne(COLLAB_API_TOKEN_RATE="1000000/minute")
    create_superuser(server.env, STAFF_PASSWORD)
    session = server.create_session("schemathesis")
    schema_url = f"{server.url}/api/schema/"

    # Every operation as staff, with arbitrary session ids.
    code, output = schemathesis(tmp_path, schema_url, "--auth", f"staff:{STAFF_PASSWORD}")
    assert code == 0, output
    assert "Tested: 14" in output, output

    # Reading and publishing with the session's word token, in that real session.
    config = tmp_path / "schemathesis.toml"
    config.write_text(f'[parameters]\n"path.session_id" = "{session["id"]}"\n')
    code, output = schemathesis(
        tmp_path,
        schema_url,
        "--header",
        f"Authorization: Bearer {session['word_token']}",
        "--include-path-regex",
        "/(html|document)$",
        config=config,
    )
    assert code == 0, output
    assert "Tested: 2" in output, output
    assert "Traceback" not in server.output_tail(400)


def test_a_malformed_multipart_body_is_answered_by_the_api_not_by_twisted(daphne):
    # Twisted used to parse every multipart POST itself and answer a bad one with a bare 400.
    server = daphne()
    create_superuser(server.env, STAFF_PASSWORD, username="multipart-staff")
    boundary = "c637e12e2b1a998d80d1b087531af51c"
    request = urllib.request.Request(  # noqa: S310  (the test's own loopback server)
        f"{server.url}/api/convert/docx-html",
        data=f"--{boundary}--\r\n".encode(),
        method="POST",
        headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Authorization": "Basic "
            + base64.b64encode(f"multipart-staff:{STAFF_PASSWORD}".encode()).decode(),
        },
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)  # noqa: S310
    assert refused.value.code == 400
    assert refused.value.headers["Content-Type"] == "application/json"
    assert refused.value.read().startswith(b'{"success":false')
