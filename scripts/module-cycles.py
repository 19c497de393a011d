#!/usr/bin/env python3
"""Module cycles in the Rust crates, as a ratchet: fails on any cycle not already known.

Usage: scripts/module-cycles.py [--write]
  Reads every .rs file under <crate>/src of broker, labs and src-tauri, takes each `crate::a::b` and
  `super::x` path it names, and draws an edge from the file's module to the deepest module that
  path names. A module and its ancestors are left out (a parent re-exporting its children is not a
  knot). Strongly connected sets of modules of more than one are cycles, counted twice: module by
  module, and with each top-level module taken as one (`labs::lab::*` <-> `labs::bench::*`). Each must lie inside a
  set listed in scripts/module-cycles.txt (the cycles known when this check came in, issue 12);
  a new cycle, or a known one that grew, fails with the edges that close it. --write rewrites the
  file with today's cycles (after removing one, to lock the gain in).
"""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CRATES = ["broker", "labs", "src-tauri"]
KNOWN = ROOT / "scripts" / "module-cycles.txt"
PATH_RE = re.compile(r"\b(crate|super)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
TEST_MOD_RE = re.compile(r"#\[cfg\(test\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;")
GROUP_RE = re.compile(r"\b(crate|super)((?:::[A-Za-z_][A-Za-z0-9_]*)*)::\{([^;]*?)\}", re.S)


def module_of(src: Path, file: Path) -> tuple:
    parts = list(file.relative_to(src).with_suffix("").parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def strip_comments(text: str) -> str:
    """The code that ships: comments out, and an inline `#[cfg(test)] mod tests` (kept last in
    a file, as everywhere here) cut off."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    m = re.search(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", text)
    return text[: m.start()] if m else text


def paths_in(text: str):
    """(root, [segments]) for each path, `use a::{b, c::d}` groups expanded one level."""
    for m in GROUP_RE.finditer(text):
        head = [p for p in m.group(2).split("::") if p]
        for item in m.group(3).split(","):
            item = item.strip().split(" as ")[0]
            segs = [p for p in re.split(r"::", item) if re.fullmatch(r"[A-Za-z_]\w*", p)]
            if segs:
                yield m.group(1), head + segs
    for m in PATH_RE.finditer(text):
        yield m.group(1), [p for p in m.group(2).split("::") if p]


def graph(crate: str):
    src = ROOT / crate / "src"
    # Test modules may reach anywhere: only what ships counts. A test module is a file declared
    # under `#[cfg(test)]` (`mod partition_tests;`), everything below it, and any `tests.rs`.
    every = list(src.rglob("*.rs"))
    test_modules = set()
    for f in every:
        for m in TEST_MOD_RE.finditer(f.read_text()):
            test_modules.add(module_of(src, f) + (m.group(1),))
    files = [
        f
        for f in every
        if f.name != "tests.rs"
        and not any(module_of(src, f)[: len(t)] == t for t in test_modules)
    ]
    modules = {module_of(src, f) for f in files}
    edges = {}
    for f in files:
        me = module_of(src, f)
        # A file `a/b.rs` is module a::b; `super` is a (for mod.rs files: the parent of a::b too).
        parent = me[:-1]
        for root, segs in paths_in(strip_comments(f.read_text())):
            base = () if root == "crate" else parent
            full = base + tuple(segs)
            target = max((full[:i] for i in range(len(full) + 1) if full[:i] in modules), key=len)
            if target == me or me[: len(target)] == target or target[: len(me)] == me:
                continue  # itself, an ancestor, or a descendant
            edges.setdefault(me, set()).add(target)
    return modules, edges


def sccs(nodes, edges):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


LAYER_RE = re.compile(r"^//!\s+(\d+)\.\s+(.*)$")


def layers(crate: str):
    """Top-level module -> its line in lib.rs's "## Dependency direction" list (0 = top)."""
    text = (ROOT / crate / "src" / "lib.rs").read_text()
    section = text.split("## Dependency direction", 1)
    if len(section) < 2:
        return None
    out = {}
    for line in section[1].splitlines()[1:]:
        if not line.startswith("//!"):
            break
        m = LAYER_RE.match(line)
        if m:
            for module in re.findall(r"`(\w+)`", m.group(2)):
                out[module] = int(m.group(1))
    return out


def direction_errors(crate, edges):
    """Uses between top-level modules that go up (or sideways) the written direction."""
    written = layers(crate)
    if written is None:
        return [f"{crate}/src/lib.rs has no '## Dependency direction' list"]
    errors = set()
    for a, bs in edges.items():
        for b in bs:
            if not a or not b or a[0] == b[0]:
                continue
            for m in (a[0], b[0]):
                if m not in written:
                    errors.add(f"{crate}::{m} is not in the dependency direction of {crate}/src/lib.rs")
            if a[0] in written and b[0] in written and written[a[0]] >= written[b[0]]:
                errors.add(
                    f"{name(crate, a)} -> {name(crate, b)} goes against {crate}/src/lib.rs's direction "
                    f"({a[0]} is on line {written[a[0]]}, {b[0]} on line {written[b[0]]})"
                )
    return sorted(errors)


def name(crate, module):
    """`labs::lab::view`; a top-level module taken as one: `labs::lab::*`."""
    if module and module[0] == "top":
        return f"{crate}::{module[1]}::*"
    return crate + "::" + "::".join(module) if module else crate


def main():
    found = []
    details = {}
    against = []
    for crate in CRATES:
        modules, edges = graph(crate)
        against += direction_errors(crate, edges)
        # Twice: module by module, then with each top-level module as one (bench, lab, ...).
        top = {m[:1] for m in modules}
        top_edges = {}
        for a, bs in edges.items():
            for b in bs:
                if a[:1] != b[:1] and a and b:
                    top_edges.setdefault(a[:1], set()).add(b[:1])
        for comp in sccs(modules, edges) + [[("top",) + m for m in c] for c in sccs(top, top_edges)]:
            names = sorted(name(crate, m) for m in comp)
            found.append(names)
            members = set(comp)
            if comp[0][0] == "top":
                members = {m[1:] for m in comp}
                closing = [(a, b) for a, bs in edges.items() for b in bs if a[:1] in members and b[:1] in members and a[:1] != b[:1]]
            else:
                closing = [(a, b) for a in comp for b in edges.get(a, ()) if b in members]
            details[tuple(names)] = sorted(f"{name(crate, a)} -> {name(crate, b)}" for a, b in closing)
    if "--write" in sys.argv:
        KNOWN.write_text(
            "# Module cycles still tolerated (issue 12): one per line, its modules separated by spaces.\n"
            "# The check fails on any cycle not listed here; remove lines as knots go.\n"
            + "".join(" ".join(c) + "\n" for c in sorted(found))
        )
        print(f"wrote {len(found)} cycles to {KNOWN.relative_to(ROOT)}")
        return 0
    known = [set(l.split()) for l in KNOWN.read_text().splitlines() if l.strip() and not l.startswith("#")]
    new = [c for c in found if not any(set(c) <= k for k in known)]
    gone = [k for k in known if not any(set(c) & k for c in found)]
    print(f"module cycles: {len(found)} (known: {len(known)})")
    for k in gone:
        print(f"  gone (remove it from {KNOWN.name}): {' '.join(sorted(k))}")
    for c in new:
        print(f"NEW CYCLE among {len(c)} modules: {' '.join(c)}")
        for e in details[tuple(c)]:
            print(f"    {e}")
    print(f"uses against a crate's written dependency direction: {len(against)}")
    for e in against:
        print(f"  {e}")
    return 1 if new or against else 0


if __name__ == "__main__":
    sys.exit(main())
