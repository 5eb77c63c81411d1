"""What the verifier will pay for a checked `bpf-fn` body, estimated from
tables.VERIFIER_COSTS, so a loop no kernel can verify is an error at its
span instead of minutes of verification in the VM ending in a rejection (or
an out-of-memory kill).

The estimate is a lower bound: both arms of an `if` cost the dearer one (the
verifier may prune the other), a loop with a `(break)` counts one iteration
(the break may be decided early). Loops multiply their body, nested loops
multiply again. Two limits are checked: the program's `:max-insns` (default
the kernel's 1,000,000 processed instructions) and the verifier's 8,192
pending branches."""

from __future__ import annotations

from ..records import dataclass

from .. import ir, tables
from ..errors import Diagnostic

COSTS = tables.VERIFIER_COSTS
HASH_LIKE = frozenset({"hash", "lru-hash", "per-cpu-hash"})


@dataclass
class Cost:
    insns: int = 0
    branches: int = 0

    def __add__(self, other: "Cost") -> "Cost":
        return Cost(self.insns + other.insns, self.branches + other.branches)

    def times(self, n: int) -> "Cost":
        return Cost(self.insns * n, self.branches * n)


def _of(name: str) -> Cost:
    c = COSTS[name]
    return Cost(c.insns, c.branches)


class Estimator:
    def __init__(self, maps: dict[str, ir.MapDecl], funcs: dict[str, ir.FuncDecl] | None = None):
        self.maps = maps
        self.funcs = funcs or {}  # a call costs its function's body (both backends inline it)
        self.loops: list[tuple[ir.Loop, Cost]] = []  # every outermost loop with its total cost
        self.depth = 0  # loops around the node being estimated

    def body(self, nodes: list[ir.Node]) -> Cost:
        total = Cost()
        for n in nodes:
            total = total + self.node(n)
        return total

    def node(self, e: ir.Node) -> Cost:
        if isinstance(e, ir.Loop):
            iterations = max(0, e.end - e.start)
            if _breaks(e.body):
                iterations = min(iterations, 1)
            self.depth += 1
            try:
                cost = (self.body(e.body) + _of("loop-iteration")).times(iterations)
            finally:
                self.depth -= 1
            if self.depth == 0:
                self.loops.append((e, cost))
            return cost
        if isinstance(e, ir.FuncCall) and e.name in self.funcs:
            return self.body(e.args) + self.body(self.funcs[e.name].body)
        if isinstance(e, ir.If):
            return self.node(e.cond) + _of("op") + _dearer(self.node(e.then), self.node(e.otherwise))
        if isinstance(e, ir.IfLet):
            return self.node(e.value) + _dearer(self.node(e.then), self.node(e.otherwise))
        own = self.own(e)
        for child in ir.children(e):
            own = own + self.node(child)
        return own

    def own(self, e: ir.Node) -> Cost:
        if isinstance(e, ir.Header):
            key = f"header:{e.header}"
            return _of(key if key in COSTS else "header:l4")
        if isinstance(e, ir.MapAdd):
            m = self.maps.get(e.map)
            return _of("map-add-hash" if m is not None and m.kind in HASH_LIKE else "map-add")
        form = getattr(e, "form", "")
        if form in COSTS:
            return _of(form)
        if isinstance(e, (ir.Int, ir.Var, ir.Bool, ir.Begin, ir.Break, ir.Return, ir.Cast)):
            return Cost()
        return _of("op")


def _dearer(a: Cost, b: Cost) -> Cost:
    return Cost(max(a.insns, b.insns), max(a.branches, b.branches))


def _breaks(nodes: list[ir.Node]) -> bool:
    """A (break) of this loop (not of a loop nested in it)."""
    for n in nodes:
        if isinstance(n, ir.Break):
            return True
        if not isinstance(n, ir.Loop) and _breaks(ir.children(n)):
            return True
    return False


def check_cost(fn: ir.BpfFn, program: ir.ProgramDecl, maps: dict[str, ir.MapDecl],
               funcs: dict[str, ir.FuncDecl] | None = None) -> list[Diagnostic]:
    """Only loops are estimated: straight-line code costs the verifier its
    length once (a few hundred instructions), loops are what reach the limits.
    A loop in a called function counts where it is called."""
    estimator = Estimator(maps, funcs)
    estimator.body(fn.body)
    nested = {id(inner) for outer, _ in estimator.loops for inner in _loops_in(outer.body)}
    outermost = [(loop, cost) for loop, cost in estimator.loops if id(loop) not in nested]
    if not outermost:
        return []
    total = sum((cost for _, cost in outermost), Cost())
    budget = program.max_insns or tables.DEFAULT_MAX_INSNS
    limit = "this program's :max-insns" if program.max_insns else "the kernel's complexity limit"
    out = []
    if total.insns > budget:
        loop, cost = max(outermost, key=lambda lc: lc[1].insns)
        rest = "" if len(outermost) == 1 else f" (all loops of `{fn.name}`: {total.insns:,})"
        out.append(Diagnostic(
            f"this loop runs {loop.end - loop.start:,} times and costs the verifier at least {cost.insns:,} "
            f"instructions{rest}, over {limit} of {budget:,}",
            loop.span, ["the verifier walks every iteration of a bounded loop: run fewer iterations or do less per iteration"]))
    loop, cost = max(outermost, key=lambda lc: lc[1].branches)
    if cost.branches > tables.MAX_PENDING_BRANCHES:
        out.append(Diagnostic(
            f"this loop runs {loop.end - loop.start:,} times and leaves the verifier at least {cost.branches:,} "
            f"branches to come back to (each map lookup or packet bounds check inside it sets one aside per "
            f"iteration), over its limit of {tables.MAX_PENDING_BRANCHES:,}",
            loop.span, ["look maps up and parse headers before the loop, or run fewer iterations"]))
    return out


def _loops_in(nodes: list[ir.Node]) -> list[ir.Loop]:
    out = []
    for n in nodes:
        if isinstance(n, ir.Loop):
            out.append(n)
        out += _loops_in(ir.children(n))
    return out
