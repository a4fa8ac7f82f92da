"""Shared test support: the deterministic Raft simulator and its safety checkers."""
