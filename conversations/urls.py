from __future__ import annotations

from django.urls import path

from conversations import views

urlpatterns = [
    path("", views.chat_home, name="chat-home"),
    path("chat/", views.chat_home),
    path("chat/new/", views.chat_new, name="chat-new"),
    path("chat/start/", views.chat_start, name="chat-start"),
    path("chat/demo-identity/", views.chat_demo_identity, name="chat-demo-identity-new"),
    path("chat/<uuid:conversation_id>/", views.chat_page, name="chat"),
    path(
        "chat/<uuid:conversation_id>/demo-identity/",
        views.chat_demo_identity,
        name="chat-demo-identity",
    ),
]
