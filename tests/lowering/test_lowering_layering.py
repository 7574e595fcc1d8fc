"""Dependencies point one way: device <- lowering <- nki <- neuron. lowering must not import
nki or neuron (checked on the source, so it also holds for modules no test imports)."""
import ast
import pathlib

import lowering

FORBIDDEN = ("nki", "neuron")


def imported_modules(path: pathlib.Path):
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def test_lowering_does_not_import_front_ends():
    root = pathlib.Path(lowering.__file__).parent
    bad = [f"{path.name}: import {name}" for path in sorted(root.rglob("*.py"))
           for name in imported_modules(path) if name.split(".")[0] in FORBIDDEN]
    assert not bad, "lowering/ must not depend on nki/ or neuron/: " + "; ".join(bad)
