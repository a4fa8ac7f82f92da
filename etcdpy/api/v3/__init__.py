"""etcd's v3 gRPC API (etcdserverpb, v3lockpb, v3electionpb, grpc.health.v1) over the façade."""
