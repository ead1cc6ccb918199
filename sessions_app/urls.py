from django.urls import path, re_path

from . import edit_in_word, views

urlpatterns = [
    path("", views.landing, name="landing"),
    path(
        "edit-in-word/generate-word-launch-link",
        edit_in_word.LaunchLinkView.as_view(),
        name="generate-word-launch-link",
    ),
    path("edit-in-word/try/", views.try_edit_in_word, name="try-edit-in-word"),
    re_path(
        r"^edit-in-word/files/(?P<file_id>[A-Za-z0-9_-]{1,64})/(?P<file_name>[^/]+)$",
        edit_in_word.launch_file,
        name="launch-file",
    ),
    path("healthz", views.healthz, name="healthz"),
    re_path(r"^s/(?P<session_id>[A-Za-z0-9_-]{1,64})/$", views.viewer, name="viewer"),
    path("addin/manifest.xml", views.addin_manifest, name="addin-manifest"),
    path("addin/taskpane.html", views.addin_taskpane, name="addin-taskpane"),
    re_path(r"^static/(?P<path>.+)$", views.static_file, name="static"),
]
