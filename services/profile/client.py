"""The profile service's admin API as Python calls: find, get, timeline, export, erase.

Used by scoring's dashboard (on the logged-in admin's behalf) and meant for any other caller
of the same API, such as a CLI."""

from typing import Any

from services.runtime.admin_client import AdminClient, segment


class ProfileClient:
    def __init__(self, client: AdminClient) -> None:
        self._client = client

    async def find(self, **filters: str) -> list[dict[str, Any]]:
        """GET /v1/customers with these filters (user_id, email, ...): the first page."""
        found = await self._client.request("GET", "/v1/customers", params=filters)
        return list((found or {}).get("customers", []))

    async def get(self, customer_id: str) -> dict[str, Any] | None:
        return await self._client.request("GET", f"/v1/customers/{segment(customer_id)}")

    async def timeline(self, customer_id: str, limit: int = 50) -> dict[str, Any] | None:
        return await self._client.request(
            "GET", f"/v1/customers/{segment(customer_id)}/timeline", params={"limit": limit}
        )

    async def export(self, customer_id: str) -> dict[str, Any] | None:
        return await self._client.request("GET", f"/v1/customers/{segment(customer_id)}/export")

    async def erase(self, customer_id: str) -> dict[str, Any] | None:
        return await self._client.request("DELETE", f"/v1/customers/{segment(customer_id)}")
