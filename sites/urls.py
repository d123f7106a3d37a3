from __future__ import annotations

from django.urls import path

from sites import views

urlpatterns = [
    path("widget.js", views.widget_script, name="widget-script"),
    path("widget/<str:public_id>/", views.widget_frame, name="widget-frame"),
    path("widget/<str:public_id>/theme.css", views.widget_theme, name="widget-theme"),
    path("widget/<str:public_id>/session/", views.widget_session, name="widget-session"),
    path("widget/<str:public_id>/start/", views.widget_start, name="widget-start"),
]
