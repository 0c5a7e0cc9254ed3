"""The notify service's admin API as Python calls (what the dashboard reads of it)."""

from typing import Any

from services.runtime.admin_client import AdminClient, segment


class NotifyClient:
    def __init__(self, client: AdminClient) -> None:
        self._client = client

    async def notifications(self, customer_id: str, limit: int = 50) -> list[dict[str, Any]]:
        """The customer's emails, newest first."""
        found = await self._client.request(
            "GET",
            f"/v1/customers/{segment(customer_id)}/notifications",
            params={"limit": limit},
        )
        return list((found or {}).get("notifications", []))
