"""Secure by default in production, and browser origins for the REST API (README "Deployment")."""

import json
import secrets
import subprocess
import sys

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from tests.servers import REPO_ROOT, child_env

pytestmark = pytest.mark.django_db

PRODUCTION = {
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
    "COLLAB_PUBLIC_URL": "https://collab.example.org",
}
STAFF_PASSWORD = "staff-password-for-tests"  # noqa: S105


def run_python(env, *args, unset=()):
    """Python in a fresh process with this environment, less the variables named in `unset`."""
    env = {name: value for name, value in child_env(env).items() if name not in unset}
    return subprocess.run(
        [sys.executable, *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def settings_in(env, *names, unset=()):
    """The values of some settings in a fresh process with this environment."""
    code = (
        "import json, django; django.setup(); from django.conf import settings; "
        f"print(json.dumps({{name: getattr(settings, name, None) for name in {list(names)!r}}}))"
    )
    done = run_python(env, "-c", code, unset=unset)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_check_deploy_reports_nothing_in_production():
    done = run_python(PRODUCTION, "manage.py", "check", "--deploy", "--fail-level", "DEBUG")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout


def test_check_deploy_complains_about_a_debug_server():
    """The check above can fail: the same command on development settings reports problems."""
    done = run_python({**PRODUCTION, "DJANGO_DEBUG": "1"}, "manage.py", "check", "--deploy")
    assert "security.W018" in done.stdout + done.stderr


def test_debug_is_off_unless_asked_for():
    assert settings_in({}, "DEBUG", unset=["DJANGO_DEBUG"]) == {"DEBUG": False}
    assert settings_in({"DJANGO_DEBUG": "1"}, "DEBUG") == {"DEBUG": True}


def test_the_built_in_secret_key_comes_only_with_debug():
    unset_debug = run_python({}, "manage.py", "check", unset=["DJANGO_DEBUG", "DJANGO_SECRET_KEY"])
    debug_off = run_python({"DJANGO_DEBUG": "0"}, "manage.py", "check", unset=["DJANGO_SECRET_KEY"])
    for done in (unset_debug, debug_off):
        assert done.returncode != 0
        assert "DJANGO_SECRET_KEY must be set" in done.stderr
    development = settings_in({"DJANGO_DEBUG": "1"}, "DEBUG", "SECRET_KEY", unset=["DJANGO_SECRET_KEY"])
    assert development == {"DEBUG": True, "SECRET_KEY": "insecure-development-key-only-for-debug"}


def test_production_settings_follow_the_public_url():
    values = settings_in(
        PRODUCTION,
        "SECURE_SSL_REDIRECT",
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SECURE_HSTS_SECONDS",
        "SECURE_PROXY_SSL_HEADER",
    )
    assert values == {
        "SECURE_SSL_REDIRECT": True,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_HSTS_SECONDS": 31536000,
        "SECURE_PROXY_SSL_HEADER": None,
    }
    plain = settings_in(
        {"COLLAB_PUBLIC_URL": "http://127.0.0.1:8000"}, "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS"
    )
    assert plain == {"SECURE_SSL_REDIRECT": False, "SECURE_HSTS_SECONDS": 0}


def test_proxy_ssl_header_comes_from_the_environment():
    env = {**PRODUCTION, "DJANGO_SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https"}
    assert settings_in(env, "SECURE_PROXY_SSL_HEADER") == {
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"]
    }
    done = run_python(
        {**PRODUCTION, "DJANGO_SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto"}, "manage.py", "check"
    )
    assert done.returncode != 0 and "DJANGO_SECURE_PROXY_SSL_HEADER" in done.stderr


def test_ssl_redirect_spares_healthz(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/api/schema/").status_code == 301
    assert client.get("/healthz").status_code in (200, 503)
    assert client.get("/healthz", secure=True).status_code in (200, 503)


def test_behind_a_tls_proxy_forwarded_https_is_not_redirected(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert client.get("/api/schema/", HTTP_X_FORWARDED_PROTO="https").status_code == 200


# Browser origins of the REST API


def test_allowed_origins_open_the_api_to_those_origins_only():
    env = {"COLLAB_ALLOWED_ORIGINS": "https://intranet.example.com"}
    values = settings_in(env, "CORS_ALLOWED_ORIGINS", "CSRF_TRUSTED_ORIGINS", "CORS_ALLOW_ALL_ORIGINS")
    assert values["CORS_ALLOWED_ORIGINS"] == ["https://intranet.example.com"]
    assert "https://intranet.example.com" in values["CSRF_TRUSTED_ORIGINS"]
    assert values["CORS_ALLOW_ALL_ORIGINS"] is False
    assert settings_in({}, "CORS_ALLOWED_ORIGINS") == {"CORS_ALLOWED_ORIGINS": []}


def preflight(client, origin):
    return client.options(
        "/api/sessions/",
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, content-type",
    )


def test_api_is_same_origin_only_by_default(client):
    response = preflight(client, "https://evil.example.com")
    assert "access-control-allow-origin" not in response.headers
    assert (
        "access-control-allow-origin" not in client.get("/healthz", HTTP_ORIGIN="https://x.example").headers
    )


def test_listed_origin_may_call_the_api(client, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://intranet.example.com"]
    response = preflight(client, "https://intranet.example.com")
    assert response.headers["access-control-allow-origin"] == "https://intranet.example.com"
    assert "authorization" in response.headers["access-control-allow-headers"]
    assert "access-control-allow-origin" not in preflight(client, "https://evil.example.com").headers
    # Only the API: pages and the admin stay same-origin.
    admin = client.get("/admin/login/", HTTP_ORIGIN="https://intranet.example.com")
    assert "access-control-allow-origin" not in admin.headers


def logged_in_client():
    User.objects.create_user("staff", password=STAFF_PASSWORD, is_staff=True, is_superuser=True)
    client = APIClient(enforce_csrf_checks=True)
    assert client.login(username="staff", password=STAFF_PASSWORD)
    # The cookie a page of this server would have set, and the header its script sends back.
    csrf = secrets.token_hex(16)
    client.cookies["csrftoken"] = csrf
    return client, csrf


def create_session_from(client, csrf, origin):
    """POST a new session as a page at `origin` would, sending back the login session's CSRF token."""
    return client.post(
        "/api/sessions/", {"title": "x"}, format="json", HTTP_X_CSRFTOKEN=csrf, HTTP_ORIGIN=origin
    )


@pytest.mark.usefixtures("fast_password_hashing")
def test_login_session_writes_from_a_foreign_page_are_refused():
    client, csrf = logged_in_client()
    foreign = create_session_from(client, csrf, "https://evil.example.com")
    assert foreign.status_code == 403
    own = create_session_from(client, csrf, "http://testserver")
    assert own.status_code == 201


@pytest.mark.usefixtures("fast_password_hashing")
def test_listed_origin_may_write_with_a_login_session(settings):
    settings.CSRF_TRUSTED_ORIGINS = [*settings.CSRF_TRUSTED_ORIGINS, "https://intranet.example.com"]
    client, csrf = logged_in_client()
    response = create_session_from(client, csrf, "https://intranet.example.com")
    assert response.status_code == 201


def test_sqlite_databases_use_write_ahead_logging(tmp_path):
    code = (
        "import django; django.setup(); from django.db import connection; "
        "cursor = connection.cursor(); cursor.execute('PRAGMA journal_mode'); print(cursor.fetchone()[0]); "
        "cursor.execute('PRAGMA synchronous'); print(cursor.fetchone()[0])"
    )
    done = run_python({**PRODUCTION, "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3"}, "-c", code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["wal", "2"]  # synchronous FULL: every commit is on disk
