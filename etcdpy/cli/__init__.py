"""The ``etcdpy`` command: etcd's command line (flags, env, --help, --version)."""
