"""The analytics dashboard scoring serves at `/`: static pages that chart the JSON of
/v1/analytics/..., behind an admin login kept in a session cookie."""
