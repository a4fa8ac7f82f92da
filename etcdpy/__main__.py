"""``python -m etcdpy`` runs the same entry point as the ``etcdpy`` console script."""

from etcdpy.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
