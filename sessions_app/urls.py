from django.urls import path, re_path

from . import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    re_path(r"^s/(?P<session_id>[A-Za-z0-9_-]{1,64})/$", views.viewer, name="viewer"),
    path("addin/manifest.xml", views.addin_manifest, name="addin-manifest"),
    path("addin/taskpane.html", views.addin_taskpane, name="addin-taskpane"),
    re_path(r"^static/(?P<path>.+)$", views.static_file, name="static"),
]
