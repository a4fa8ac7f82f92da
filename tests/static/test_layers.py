"""Import direction of ARCHITECTURE.md 3.7: a lower layer never imports a higher one.

Read from the source with ``ast`` (nothing is imported), so a violation fails here before
it shows up as an import cycle or an impure Raft core.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "etcdpy"

LAYERS: dict[str, int] = {
    "errors": 0, "version": 0, "util": 0, "_pb": 0, "codec": 0,
    "raft": 1,
    "storage": 2,
    "mvcc": 3, "lease": 3, "auth": 3, "membership": 3, "v2store": 3,
    "server": 4,
    "transport": 5, "discovery": 5, "observability": 5,
    "api": 6,
    "config": 7, "embed": 7, "cli": 7, "tools": 7, "__main__": 7,
}
# Layer 5 may import only layers 0-1 (plus stdlib and its libraries), not 2-4.
ALLOWED_EXTRA: dict[int, set[int]] = {5: {0, 1}}
RAFT_FORBIDDEN = {"asyncio", "socket", "threading", "time", "lmdb", "grpc", "aiohttp", "os"}


def _modules() -> list[Path]:
    return sorted(p for p in PKG.rglob("*.py") if "_pb" not in p.parts)


def _top(path: Path) -> str:
    rel = path.relative_to(PKG)
    return rel.parts[0].removesuffix(".py") if rel.parts else ""


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def _allowed(src_layer: int, dst_layer: int) -> bool:
    if src_layer in ALLOWED_EXTRA:
        return dst_layer in ALLOWED_EXTRA[src_layer] or dst_layer == src_layer
    return dst_layer <= src_layer


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_module_respects_layers(path: Path) -> None:
    src = _top(path)
    if src in ("__init__", ""):
        return
    assert src in LAYERS, f"{path}: package {src!r} has no layer in ARCHITECTURE 3.7"
    for name in _imports(path):
        parts = name.split(".")
        if parts[0] != "etcdpy" or len(parts) < 2:
            continue
        dst = parts[1]
        assert dst in LAYERS, f"{path} imports {name}: no layer for {dst!r}"
        assert _allowed(LAYERS[src], LAYERS[dst]), (
            f"{path.relative_to(ROOT)} (layer {LAYERS[src]}) imports {name} (layer {LAYERS[dst]})"
        )


def test_raft_core_is_pure() -> None:
    offenders = []
    for path in (PKG / "raft").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                mods = [a.name.split(".")[0] for a in node.names]
                if "random" in mods:
                    offenders.append(f"{path.name}: import random (inject random.Random)")
            elif isinstance(node, ast.ImportFrom) and node.module:
                mods = [node.module.split(".")[0]]
                if mods[0] == "random" and any(a.name != "Random" for a in node.names):
                    offenders.append(f"{path.name}: from random import non-Random")
            else:
                continue
            offenders += [f"{path.name}: imports {m}" for m in mods if m in RAFT_FORBIDDEN]
    assert not offenders, offenders
