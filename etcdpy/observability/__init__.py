"""etcdpy.observability package."""
