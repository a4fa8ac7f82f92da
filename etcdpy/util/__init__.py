"""Small shared helpers (ids, clock, failpoints, ...)."""
