"""Cluster membership: members, member and cluster IDs, persisted in the KV backend."""
