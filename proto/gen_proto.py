#!/usr/bin/env python3
"""Generate etcdpy/_pb from proto/ (protobuf, gRPC and mypy-protobuf stubs).

Why a script and not plain protoc: the .proto files keep etcd's own package
names (``mvccpb``, ``etcdserverpb``...) so the wire names are etcd's, but the
generated Python must live inside our package.  protoc writes
``from mvccpb import kv_pb2``; we rewrite that to
``from etcdpy._pb.mvccpb import kv_pb2`` (and the matching ``import x.y`` /
``x.y.Name`` forms in the .pyi stubs).

Usage:  python proto/gen_proto.py [--out ROOT]
        (ROOT defaults to the repository root; files go to ROOT/etcdpy/_pb)
tests/test_proto_regen.py runs this into a temp dir and diffs with the tree.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PROTO_DIR = REPO / "proto"
PB_PACKAGE = "etcdpy._pb"
HEADER_INIT = '"""Generated protobuf modules (proto/gen_proto.py). Do not edit."""\n'


def proto_files(proto_dir: Path) -> list[Path]:
    return sorted(p.relative_to(proto_dir) for p in proto_dir.rglob("*.proto"))


def proto_packages(proto_dir: Path) -> list[str]:
    """Top-level directories of proto/ are the Python packages to re-root."""
    return sorted({p.parts[0] for p in proto_files(proto_dir) if len(p.parts) > 1})


def rewrite(text: str, packages: list[str]) -> str:
    alt = "|".join(re.escape(p) for p in packages)
    # from mvccpb import kv_pb2 as ...   /   from mvccpb.sub import x
    text = re.sub(
        rf"^(\s*)from ({alt})((?:\.\w+)*) import ",
        rf"\1from {PB_PACKAGE}.\2\3 import ",
        text,
        flags=re.M,
    )
    # import mvccpb.kv_pb2   (mypy-protobuf stubs)
    text = re.sub(
        rf"^(\s*)import ({alt})\.",
        rf"\1import {PB_PACKAGE}.\2.",
        text,
        flags=re.M,
    )
    # mvccpb.kv_pb2.KeyValue references inside stubs (not already re-rooted,
    # not part of a longer dotted name or string like "etcdserverpb.KV").
    text = re.sub(
        rf"(?<![\w.])({alt})\.(\w+_pb2(?:_grpc)?)\b",
        rf"{PB_PACKAGE}.\1.\2",
        text,
    )
    return text


def generate(out_root: Path, proto_dir: Path = PROTO_DIR) -> list[Path]:
    """Generate into out_root/etcdpy/_pb; returns the files written."""
    files = proto_files(proto_dir)
    packages = proto_packages(proto_dir)
    dest = out_root / "etcdpy" / "_pb"
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        cmd = [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{proto_dir}",
            f"--python_out={tmp_path}",
            f"--grpc_python_out={tmp_path}",
            f"--mypy_out={tmp_path}",
            f"--mypy_grpc_out={tmp_path}",
            *[str(f) for f in files],
        ]
        subprocess.run(cmd, check=True)
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        written: list[Path] = []
        (dest / "__init__.py").write_text(HEADER_INIT)
        written.append(dest / "__init__.py")
        for src in sorted(tmp_path.rglob("*")):
            if not src.is_file():
                continue
            rel = src.relative_to(tmp_path)
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(rewrite(src.read_text(), packages))
            written.append(target)
        for d in sorted({p.parent for p in written}):
            init = d / "__init__.py"
            if not init.exists():
                init.write_text("")
                written.append(init)
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO, help="root; files go to ROOT/etcdpy/_pb")
    args = ap.parse_args(argv)
    written = generate(args.out)
    print(f"generated {len(written)} files under {args.out / 'etcdpy' / '_pb'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
