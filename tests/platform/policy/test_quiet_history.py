"""A history shows a deletion only to those who could see what was deleted: a citizen's
history of Consents does not reveal that someone else's choice existed."""

from __future__ import annotations

import httpx
from policy_helpers import World

from conftest import Server


def test_a_deletion_of_someone_elses_entry_is_not_in_a_history(server: Server) -> None:
    with httpx.Client(base_url=server.fhir, timeout=30, auth=server.auth) as admin:
        world = World(server, admin)
        mine, other = world.person(40), world.person(41)
        kept = world.reserve(mine)
        removed = world.reserve(other)
        assert admin.delete(f"/Consent/{removed}").status_code == 204
        with world.citizen(mine) as citizen:
            history = citizen.get("/Consent/_history?_count=1000")
            assert history.status_code == 200, history.text
            urls = {entry["fullUrl"] for entry in history.json().get("entry", [])}
        assert any(url.endswith(f"/Consent/{kept}") for url in urls)
        assert not any(url.endswith(f"/Consent/{removed}") for url in urls)
        everything = admin.get("/Consent/_history?_count=1000").json()["entry"]
        assert any(e["fullUrl"].endswith(f"/Consent/{removed}") for e in everything)
