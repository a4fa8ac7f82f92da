"""Client-facing APIs (layer 6): gRPC v3 servicers, the JSON gateway, HTTP endpoints."""
