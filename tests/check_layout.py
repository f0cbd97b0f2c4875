#!/usr/bin/env python3
"""Fails when an include crosses the architecture's arrows the wrong way.

The build already refuses most of them (each library has its own include root, and a plugin
sees only the SDK and the packages it names); this check also covers what a stray include
path would let through, and says which rule a file breaks:
  sdk       -> nothing of chestlab but itself
  engine    -> the SDK's plain types; no LibTorch
  report    -> engine, SDK plain types; no LibTorch
  packages  -> SDK, other packages, engine (HDF5 wrapper) and, in sources only, report
  host      -> engine, SDK; no package, no report, no app
  plugins   -> SDK and the packages named in the plugin's chestlab_add_plugin(... PACKAGES ...)
Usage: check_layout.py SOURCE_DIR
"""
import pathlib
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]', re.M)
TORCH = ("torch/", "ATen/", "c10/")
PACKAGES = ("imaging", "detection", "rsna", "synth")


def sdk_headers(root):
    folder = root / "framework/sdk/include/chestlab"
    return {"chestlab/" + p.name for p in folder.glob("*.h")}


def sdk_plain_headers(root):
    """The SDK headers that need no LibTorch (what the engine may use)."""
    plain = set()
    for header in sdk_headers(root):
        text = (root / "framework/sdk/include" / header).read_text()
        if not any(inc.startswith(TORCH) for inc in INCLUDE.findall(text)):
            plain.add(header)
    return plain


def plugin_packages(plugin_dir):
    cmake = (plugin_dir / "CMakeLists.txt").read_text()
    m = re.search(r"PACKAGES([^)]*?)(?:LIBRARIES|SOURCES|\))", cmake, re.S)
    return set(m.group(1).split()) if m else set()


def sources(folder):
    for p in sorted(folder.rglob("*")):
        if p.suffix in (".h", ".cpp", ".c") and p.is_file():
            yield p


def check(root):
    sdk, plain = sdk_headers(root), sdk_plain_headers(root)
    problems = []

    def rule(folder, allowed, why, torch_ok=True, skip_tests=False):
        for f in sources(root / folder):
            if skip_tests and "tests" in f.relative_to(root / folder).parts:
                continue
            for inc in INCLUDE.findall(f.read_text(errors="replace")):
                if inc.startswith(TORCH) and not torch_ok:
                    problems.append(f"{f.relative_to(root)}: includes <{inc}>, but {why} has no LibTorch")
                elif inc.startswith("chestlab/") and not allowed(f, inc):
                    problems.append(f"{f.relative_to(root)}: includes \"{inc}\", which {why} may not")

    def under(inc, *prefixes):
        return any(inc.startswith("chestlab/" + p + "/") for p in prefixes)

    rule("framework/sdk", lambda f, i: i in sdk, "the SDK")
    rule("framework/engine", lambda f, i: i in plain or under(i, "engine"), "the engine", torch_ok=False,
         skip_tests=True)
    rule("framework/report", lambda f, i: i in plain or under(i, "engine", "report"), "the report",
         torch_ok=False, skip_tests=True)
    rule("framework/host", lambda f, i: i in sdk or under(i, "engine", "host"), "the host", skip_tests=True)
    rule("packages", lambda f, i: i in sdk or under(i, *PACKAGES, "engine")
         or (under(i, "report") and "src" in f.parts), "a package", skip_tests=True)
    for plugin in sorted((root / "plugins").glob("*/*/")):
        named = plugin_packages(plugin)
        for f in sources(plugin):
            if f.name.startswith("test_"):
                continue  # a plugin's tests may use the host to load it
            for inc in INCLUDE.findall(f.read_text(errors="replace")):
                if not inc.startswith("chestlab/") or inc in sdk:
                    continue
                pkg = inc.split("/")[1]
                if pkg not in named:
                    problems.append(f"{f.relative_to(root)}: includes \"{inc}\"; a plugin sees the SDK and the "
                                    f"packages its CMakeLists.txt names (PACKAGES {' '.join(sorted(named)) or '-'})")
    return problems


def main():
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    problems = check(root)
    for p in problems:
        print(p)
    print(f"layout: {len(problems)} include(s) against the arrows")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
