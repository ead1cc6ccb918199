"""Routes of the REST API, mounted at /api/ (PROTOCOL.md section 6)."""

from django.urls import path, re_path, register_converter
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from . import api, api_conversions


class SessionIdConverter:
    """A session id in a path; anything else is not a session and falls through to the API's 404."""

    regex = api.SESSION_ID_PATTERN

    def to_python(self, value):
        return value

    def to_url(self, value):
        return value


register_converter(SessionIdConverter, "session_id")

app_name = "api"

urlpatterns = [
    path("", api.ApiRootView.as_view(), name="root"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api:schema"), name="redoc"),
    path("sessions/", api.SessionListView.as_view(), name="sessions"),
    path("sessions/<session_id:session_id>/", api.SessionDetailView.as_view(), name="session"),
    path("sessions/<session_id:session_id>/tokens/", api.TokenListView.as_view(), name="tokens"),
    path(
        "sessions/<session_id:session_id>/tokens/<int:token_id>/",
        api.TokenDetailView.as_view(),
        name="token",
    ),
    path("sessions/<session_id:session_id>/end/", api.SessionEndView.as_view(), name="end"),
    path("sessions/<session_id:session_id>/html", api.SessionHtmlView.as_view(), name="html"),
    path("sessions/<session_id:session_id>/document", api.SessionDocumentView.as_view(), name="document"),
    path("sessions/<session_id:session_id>/revisions/", api.RevisionListView.as_view(), name="revisions"),
    path("integration-keys/", api.IntegrationKeyListView.as_view(), name="integration-keys"),
    path("integration-keys/<int:key_id>/", api.IntegrationKeyDetailView.as_view(), name="integration-key"),
    path("convert/html-docx", api_conversions.HtmlToDocxView.as_view(), name="convert-html-docx"),
    path("convert/docx-html", api_conversions.DocxToHtmlView.as_view(), name="convert-docx-html"),
    # Last: every other path under /api/ answers the API's JSON 404.
    re_path(r"^(?P<path>.*)$", api.api_not_found),
]
