"""etcdpy: an etcd-compatible, Raft-based key/value store server in Python."""
