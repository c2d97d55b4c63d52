"""The package's rooms and the direction of their imports (ddgd/README.md).

Every `ddgd` import in every module, at the top or inside a function, is read from the source and
checked against the order of the rooms: a room may import from rooms below it and from itself,
never from above, and `method` and `protocol` (the method and the evaluation protocol) never import
each other, so either can be read, tested and replaced alone.
"""
import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "ddgd"
# Lower rank: lower room. Rooms of one rank are siblings and may not import each other.
RANKS = {"base": 0, "config": 1, "method": 2, "protocol": 2, "embedded": 3, "experiments": 4, "pages": 5,
         "commands": 6, "cli": 7, "__main__": 8, "__init__": 8}  # cli parses for commands
# The one sanctioned upward look: validation checks the names in a config against the registries
# that define them (memory rules, networks, datasets), imported when `validate` runs.
ALLOWED_UP = {("ddgd.config.resolve", "ddgd.method.memory"), ("ddgd.config.resolve", "ddgd.protocol.networks"),
              ("ddgd.config.resolve", "ddgd.protocol.data"), ("ddgd.config.resolve", "ddgd.protocol.imagenet")}


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 2 else parts)] = path
    return out


def room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports(path: Path) -> set[str]:
    """Every ddgd module that `path` imports, wherever in the file the import stands."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("ddgd.")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ddgd"):
            for alias in node.names:  # `from ddgd.method import memory` imports the module ddgd.method.memory
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in MODULES else node.module)
    return found


MODULES = modules()


def test_every_module_lives_in_a_room():
    strays = [m for m in MODULES if room(m) not in RANKS]
    assert not strays, f"modules outside the rooms of ddgd/README.md: {strays}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down(module):
    mine = RANKS[room(module)]
    wrong = [dep for dep in imports(MODULES[module])
             if room(dep) != room(module) and RANKS[room(dep)] >= mine and (module, dep) not in ALLOWED_UP]
    assert not wrong, f"{module} ({room(module)}) imports {wrong}: a room imports only from rooms below it"


def test_the_checker_sees_a_wrong_import(tmp_path):
    # a method module that imports the protocol must be caught, even inside a function
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from ddgd.protocol.networks import build\n")
    assert imports(bad) == {"ddgd.protocol.networks"}
    assert RANKS[room("ddgd.protocol.networks")] >= RANKS[room("ddgd.method.finetune")]


def test_no_module_is_longer_than_300_lines():
    long = {m: n for m, p in MODULES.items() if (n := len(p.read_text().splitlines())) > 300}
    assert not long, f"split these modules (lines): {long}"


def test_the_maps_name_every_module_and_room():
    import ddgd

    listed = set(re.findall(r"[a-z_0-9]+", ddgd.__doc__))
    unlisted = [m for m in MODULES if m.split(".")[-1] not in listed and not m.endswith("__init__")]
    assert not unlisted, f"add these modules to the map in ddgd/__init__.py: {unlisted}"
    picture = (PACKAGE / "README.md").read_text()
    assert all(f"{r}/" in picture for r in RANKS if r not in ("commands", "cli", "__main__", "__init__")), "ddgd/README.md lacks a room"


def test_the_public_api_resolves():
    import ddgd

    for name in ddgd.__all__:
        assert getattr(ddgd, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        ddgd.nonexistent
