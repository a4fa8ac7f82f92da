"""The generated etcdpy/_pb tree must be exactly what proto/gen_proto.py makes from proto/.

Regenerates into a temp dir and diffs file by file, so an edited .proto without
regeneration (or a hand-edited _pb file) fails CI.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load_gen() -> object:
    spec = importlib.util.spec_from_file_location("gen_proto", ROOT / "proto" / "gen_proto.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["gen_proto"] = mod
    spec.loader.exec_module(mod)
    return mod


def _tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): p.read_text()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def test_generated_tree_matches(tmp_path: Path) -> None:
    gen = _load_gen()
    gen.generate(tmp_path)  # type: ignore[attr-defined]
    fresh = _tree(tmp_path / "etcdpy" / "_pb")
    current = _tree(ROOT / "etcdpy" / "_pb")
    assert sorted(fresh) == sorted(current), "file set differs: run python proto/gen_proto.py"
    stale = [name for name in fresh if fresh[name] != current[name]]
    assert not stale, f"stale generated files {stale}: run python proto/gen_proto.py"


def test_generated_imports_are_rerooted() -> None:
    for path in (ROOT / "etcdpy" / "_pb").rglob("*.py*"):
        text = path.read_text()
        for pkg in (d.name for d in (ROOT / "proto").iterdir() if d.is_dir()):
            assert f"\nfrom {pkg} import" not in text, path
            assert f"\nimport {pkg}." not in text, path
