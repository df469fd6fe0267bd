"""The host's URLs for reqmgmt (include them under any prefix)."""

from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("requirements", views.receive),
    path("records/<str:ref>", views.record),
    path("records/<str:ref>/<str:event>", views.fire),
]
