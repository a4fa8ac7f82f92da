"""etcdpy.transport package."""
