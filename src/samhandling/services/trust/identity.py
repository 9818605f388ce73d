"""The identity-provider step of a sign-in, behind a small interface a real IdP can replace.

`TestIdentityProvider` is like HelseID's test IdP: the user picks a person from the person
register and a security level (3 or 4). Pages are server-rendered, in Norwegian bokmål.
"""

from __future__ import annotations

from typing import Protocol

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from samhandling.platform.directory import PersonDirectory
from samhandling.services.trust.clients import LOGIN_CITIZEN
from samhandling.services.trust.server import PendingLogin, SignedIn

TEST_IDP = "testidp-oidc"
SECURITY_LEVELS = (3, 4)
# How the levels are named in Norwegian (eIDAS: substantial, high).
_LEVEL_NAMES = {3: "betydelig", 4: "høyt"}
_MAX_QUERY = 100
_templates = Environment(
    loader=PackageLoader("samhandling.services.trust", "templates"),
    autoescape=select_autoescape(["html"]),
)


class IdentityProvider(Protocol):
    """Authenticates the person in front of the browser."""

    name: str

    async def page(
        self, request: Request, pending: PendingLogin, message: str | None = None
    ) -> Response:
        """The sign-in page for a pending authorization request (with an error message)."""
        ...

    async def authenticate(
        self, form: dict[str, str], pending: PendingLogin
    ) -> SignedIn | str | None:
        """The signed-in person from the submitted form; None when the user cancelled; a
        message (str) when the form must be shown again."""
        ...


class TestIdentityProvider:
    """Pick a person and a security level; nothing is verified (test environments only)."""

    name = TEST_IDP

    def __init__(self, directory: PersonDirectory, page_size: int = 25) -> None:
        self.directory = directory
        self.page_size = page_size

    async def page(
        self, request: Request, pending: PendingLogin, message: str | None = None
    ) -> Response:
        query = request.query_params.get("q", "") if request.method == "GET" else ""
        query = " ".join(query.split())[:_MAX_QUERY]
        people = await self.directory.find(query, self.page_size)
        citizen = pending.client.login == LOGIN_CITIZEN
        hint = None
        if query.isdigit() and len(query) != 11:
            hint = f"Et fødselsnummer har 11 siffer, ikke {len(query)}."
        html = _templates.get_template("signin.html").render(
            heading="Logg inn som innbygger" if citizen else "Logg inn som helsepersonell",
            client=pending.client,
            citizen=citizen,
            request_uri=pending.request_uri,
            client_id=pending.client.client_id,
            people=people,
            limited=len(people) >= self.page_size,
            query=query,
            hint=hint,
            levels=[(level, _LEVEL_NAMES[level]) for level in SECURITY_LEVELS],
            message=message,
        )
        return HTMLResponse(html, status_code=400 if message else 200, headers=_NO_STORE)

    async def authenticate(
        self, form: dict[str, str], pending: PendingLogin
    ) -> SignedIn | str | None:
        if form.get("action") == "cancel":
            return None
        pid = form.get("pid", "").strip()
        if not (pid.isdigit() and len(pid) == 11):
            return (
                "Velg en person i lista. "
                "Finner du ikke personen, kan du søke etter navn eller fødselsnummer."
            )
        if await self.directory.person(pid) is None:
            return f"Fant ingen person med fødselsnummer {pid} i folkeregisteret."
        level = form.get("security_level", "4")
        if not level.isdigit() or int(level) not in SECURITY_LEVELS:
            return "Velg sikkerhetsnivå 3 eller 4."
        return SignedIn(pid=pid, security_level=int(level), idp=self.name)


_NO_STORE = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
}
