from django.urls import path, re_path

from . import pages, views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    re_path(r"^s/(?P<session_id>[A-Za-z0-9_-]{1,64})/$", pages.viewer, name="viewer"),
    path("addin/manifest.xml", pages.addin_manifest, name="addin-manifest"),
    path("addin/taskpane.html", pages.addin_taskpane, name="addin-taskpane"),
    re_path(r"^static/(?P<path>.+)$", pages.static_file, name="static"),
]
