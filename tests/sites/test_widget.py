"""The widget's HTTP side: /widget.js, the frame's headers and refusals, the visitor session
and the first message's conversation, identities signed with the site's own secret."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from conversations.identity import identity_token_sign
from conversations.models import Conversation
from sites.models import Site
from sites.visitors import visitor_token_read, visitor_token_sign
from tests.sites.factories import site_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def site() -> Site:
    return site_create()


def post(client: Client, url: str, body: Any) -> Any:
    return client.post(url, body, content_type="application/json")


def session(client: Client, site: Site, **body: Any) -> Any:
    return post(client, f"/widget/{site.public_id}/session/", body)


def start(client: Client, site: Site, **body: Any) -> Any:
    return post(client, f"/widget/{site.public_id}/start/", body)


def csp(response: Any) -> dict[str, str]:
    directives = [d.strip() for d in response["Content-Security-Policy"].split(";") if d.strip()]
    return {d.split(" ", 1)[0]: d.split(" ", 1)[1] for d in directives}


def test_widget_script_is_served_to_other_origins(client: Client) -> None:
    response = client.get("/widget.js")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    assert response["Cross-Origin-Resource-Policy"] == "cross-origin"
    body = response.content.decode()
    # Nothing the host page's policy would block: no eval, no inline styles, no innerHTML.
    for forbidden in ("eval(", "new Function", "innerHTML", 'setAttribute("style"', "<style"):
        assert forbidden not in body


def test_frame_may_be_framed_by_the_sites_origins_only(client: Client, site: Site) -> None:
    response = client.get(f"/widget/{site.public_id}/?origin=https://shop.example")
    assert response.status_code == 200
    policy = csp(response)
    assert policy["frame-ancestors"] == "https://shop.example http://localhost:8123"
    assert (
        policy["script-src"] == "'self'"
        and "unsafe-inline" not in response["Content-Security-Policy"]
    )
    assert "X-Frame-Options" not in response
    page = response.content.decode()
    assert f'data-site="{site.public_id}"' in page and 'data-ws-path=""' in page
    assert site.greeting in page
    assert site.identity_secret not in page
    assert Conversation.objects.count() == 0  # opening the frame creates nothing
    # The chat page itself still refuses every frame.
    home = client.get("/")
    assert csp(home)["frame-ancestors"] == "'none'" and home["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize(
    ("public_id", "origin", "status", "text"),
    [
        ("unknown-site", "https://shop.example", 404, "This chat isn&#x27;t available."),
        ("DISABLED", "https://shop.example", 404, "This chat isn&#x27;t available."),
        (
            "SITE",
            "https://evil.example",
            403,
            "This chat isn&#x27;t enabled on https://evil.example.",
        ),
    ],
)
def test_unknown_disabled_site_or_origin_is_refused_clearly(
    client: Client, site: Site, public_id: str, origin: str, status: int, text: str
) -> None:
    disabled = site_create(name="Closed", enabled=False)
    public_id = {"SITE": site.public_id, "DISABLED": disabled.public_id}.get(public_id, public_id)
    response = client.get(f"/widget/{public_id}/?origin={origin}")
    assert response.status_code == status
    assert text in response.content.decode()
    assert "data-site" not in response.content.decode()
    # The refusal may be shown by the page that asked, and by nobody else.
    assert csp(response)["frame-ancestors"] == origin


def test_widget_theme_has_the_sites_colours(client: Client) -> None:
    site = site_create(accent_color="#0f5132", accent_text_color="#ffffff")
    css = client.get(f"/widget/{site.public_id}/theme.css")
    assert css["Content-Type"].startswith("text/css")
    assert "--accent: #0f5132" in css.content.decode()


def test_a_new_visitor_gets_a_token_and_no_conversation(client: Client, site: Site) -> None:
    response = session(client, site)
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["conversation"] is None and Conversation.objects.count() == 0
    assert visitor_token_read(site=site, token=data["visitor"])
    assert not response.cookies  # nothing relies on a (third-party) cookie


def test_first_message_starts_the_conversation_and_the_visitor_returns_to_it(
    client: Client, site: Site
) -> None:
    token = session(client, site).json()["data"]["visitor"]
    response = start(client, site, visitor=token)
    assert response.status_code == 201
    data = response.json()["data"]
    conversation = Conversation.objects.get()
    assert conversation.site == site
    assert data["conversation"]["id"] == str(conversation.pk)
    assert data["conversation"]["ws_path"] == f"/ws/chat/{conversation.pk}/"
    assert visitor_token_read(site=site, token=data["visitor"]) == conversation.visitor_id
    # Back later (a new page load, the token from the frame's storage): the same conversation.
    again = session(Client(), site, visitor=data["visitor"]).json()["data"]
    assert again["conversation"]["id"] == str(conversation.pk)
    # A new visitor does not see it.
    assert session(Client(), site).json()["data"]["conversation"] is None


@pytest.mark.parametrize("kind", ["forged", "other_site", "not_a_string"])
def test_a_token_that_is_not_this_sites_is_refused(client: Client, site: Site, kind: str) -> None:
    other = site_create(name="Other")
    token: Any = {
        "forged": visitor_token_sign(site=site, visitor_id="v")[:-2] + "xx",
        "other_site": visitor_token_sign(site=other, visitor_id="v"),
        "not_a_string": {"visitor": "v"},
    }[kind]
    for call in (session, start):
        response = call(client, site, visitor=token)
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "visitor_invalid"
    assert Conversation.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [(b"{not json", 400, "malformed_json"), (b"[1]", 400, "bad_request")],
)
def test_bad_bodies_are_refused(
    client: Client, site: Site, body: bytes, status: int, code: str
) -> None:
    response = client.post(
        f"/widget/{site.public_id}/start/", body, content_type="application/json"
    )
    assert response.status_code == status and response.json()["error"]["code"] == code


def test_disabled_site_starts_nothing(client: Client) -> None:
    site = site_create(enabled=False)
    for call in (session, start):
        response = call(client, site)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "site_unavailable"
    assert client.get(f"/widget/{site.public_id}/session/").status_code == 405
    assert Conversation.objects.count() == 0


def site_identity(site: Site, customer_id: str = "c-42", email: str = "ana@example.com") -> str:
    return identity_token_sign(
        customer_id=customer_id, email=email, name="Ana Souza", secret=site.identity_secret
    )


def test_signed_in_customer_is_verified_with_the_sites_secret(client: Client, site: Site) -> None:
    data = session(client, site, identity=site_identity(site)).json()["data"]
    assert data["identity"] == {"verified": True, "email": "ana@example.com", "name": "Ana Souza"}
    assert data["identity_ticket"] and data["conversation"] is None
    started = start(client, site, visitor=data["visitor"], identity_ticket=data["identity_ticket"])
    conversation = Conversation.objects.get(pk=started.json()["data"]["conversation"]["id"])
    assert conversation.is_verified and conversation.identity_source == "signed"
    assert (conversation.customer_id, conversation.customer_email) == ("c-42", "ana@example.com")


def test_signed_in_customer_finds_their_conversation_on_another_device(site: Site) -> None:
    phone = Client()
    data = session(phone, site, identity=site_identity(site)).json()["data"]
    first = start(phone, site, visitor=data["visitor"], identity_ticket=data["identity_ticket"])
    conversation_id = first.json()["data"]["conversation"]["id"]
    # The laptop: a new visitor, the same signed-in customer.
    laptop = session(Client(), site, identity=site_identity(site)).json()["data"]
    assert laptop["conversation"]["id"] == conversation_id
    assert (
        visitor_token_read(site=site, token=laptop["visitor"])
        == Conversation.objects.get(pk=conversation_id).visitor_id
    )
    # Someone else signed in on the laptop does not get it.
    other = session(Client(), site, identity=site_identity(site, "c-7", "ben@example.com"))
    assert other.json()["data"]["conversation"] is None


def test_identity_signed_later_verifies_the_open_conversation(client: Client, site: Site) -> None:
    token = start(client, site).json()["data"]["visitor"]
    data = session(client, site, visitor=token, identity=site_identity(site)).json()["data"]
    conversation = Conversation.objects.get()
    assert data["conversation"]["id"] == str(conversation.pk) and conversation.is_verified


@pytest.mark.parametrize("kind", ["global_secret", "other_site", "unsigned", "replayed"])
def test_identity_not_signed_by_the_site_is_refused(client: Client, site: Site, kind: str) -> None:
    other = site_create(name="Other")
    replayed = site_identity(site)
    if kind == "replayed":
        assert session(Client(), site, identity=replayed).status_code == 200
    token = {
        "global_secret": identity_token_sign(customer_id="c-42", email="ana@example.com"),
        "other_site": site_identity(other),
        "unsigned": site_identity(site).rsplit(".", 1)[0] + ".",
        "replayed": replayed,
    }[kind]
    response = session(client, site, identity=token)
    assert response.status_code == 401
    code = response.json()["error"]["code"]
    assert code == ("identity_replayed" if kind == "replayed" else "identity_invalid")
    assert Conversation.objects.count() == 0


def test_forged_identity_ticket_is_refused(client: Client, site: Site) -> None:
    response = start(client, site, identity_ticket="eyJzdWIiOiJjLTQyIn0:forged")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "identity_invalid"
    assert Conversation.objects.count() == 0
