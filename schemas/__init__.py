"""Topic value contracts: one pydantic model per topic value, shared with producers and
consumers."""
