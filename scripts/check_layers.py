#!/usr/bin/env python3
"""Checks Tessel's layering: core -> data, optim -> parallel -> train -> launch.

A file may include headers of its own layer and the layers below it, never above; data and
optim are peers and do not include each other. Tests follow the layer of their folder
(tests/train/... is at train's layer) and may include test helpers of their layer and below.
Each test binary links only its layer's library and those below (tests/CMakeLists.txt).

  scripts/check_layers.py [ROOT]     exit 0 when the tree keeps the rule; else each offending
                                     line as file:line and what it includes
"""
import pathlib
import re
import sys

# Layer of each top-level folder; equal numbers are peers, which must not include each other.
LAYERS = {"core": 0, "data": 1, "optim": 1, "parallel": 2, "train": 3, "launch": 4}
LIBRARIES = {"tessel_core": "core", "tessel_cuda": "core", "tessel_data": "data", "tessel_optim": "optim",
             "tessel_parallel": "parallel", "tessel_train": "train", "tessel_launch": "launch"}
SOURCES = (".h", ".cc", ".cu", ".cuh")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def layer_of(parts):
    """The layer folder a path (as parts relative to the root) belongs to, or None."""
    if parts and parts[0] == "tests" and len(parts) > 1:
        parts = parts[1:]
    return parts[0] if parts and parts[0] in LAYERS else None


def allowed(src, dst):
    return src == dst or LAYERS[dst] < LAYERS[src]


def check_includes(root):
    problems = []
    for folder in list(LAYERS) + ["tests"]:
        for path in sorted((root / folder).rglob("*")):
            if path.suffix not in SOURCES:
                continue
            rel = path.relative_to(root).parts
            src = layer_of(rel)
            if src is None:
                continue
            for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                m = INCLUDE.match(line)
                if not m:
                    continue
                dst = layer_of(m.group(1).split("/"))
                if dst is not None and not allowed(src, dst):
                    problems.append(f"{path.relative_to(root)}:{number}: {src} includes \"{m.group(1)}\" from {dst}, "
                                    f"a layer {'beside' if LAYERS[src] == LAYERS[dst] else 'above'} it")
    return problems


def check_test_links(root):
    problems = []
    text = (root / "tests" / "CMakeLists.txt").read_text()
    for number, line in enumerate(text.splitlines(), 1):
        m = re.match(r"\s*tessel_test_binary\((\S+)\s+(\S+)(.*)\)", line)
        if not m:
            continue
        src = m.group(2)
        for lib in m.group(3).split():
            dst = LIBRARIES.get(lib)
            if dst is not None and src in LAYERS and not allowed(src, dst):
                problems.append(f"tests/CMakeLists.txt:{number}: {m.group(1)} (layer {src}) links {lib} from {dst}")
    return problems


def main():
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parent.parent)
    problems = check_includes(root) + check_test_links(root)
    for p in problems:
        print(p)
    if problems:
        print(f"check_layers: {len(problems)} violation(s) of core -> data, optim -> parallel -> train -> launch; "
              "hint: move the code to the lowest layer that needs it, or pass what it needs in from above")
        return 1
    print("check_layers: every include and test binary keeps core -> data, optim -> parallel -> train -> launch")
    return 0


if __name__ == "__main__":
    sys.exit(main())
