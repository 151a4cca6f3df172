"""Which AWS operations a Lambda function's code path can call, found by reading the code.

From a handler (`functions/<dir>/app.py`) the scan follows every reference to a function, method,
class or module-level name of `ssm_guard` (imports inside functions too), and collects each call
of a boto3 client method that is an API operation (`client.describe_endpoint(...)`,
`client.get_paginator("list_tags")`). It errs on the side of finding too much: a method called
on an object whose type it cannot tell leads to every package method of that name.

A client's service is known from its type annotation (`client: SageMakerClient`, from
`mypy_boto3_sagemaker`), from the expression that made it (`clients.ssm()`, `guard.client("ssm")`,
`boto3.client("ssm")`) or from a class field annotated with a client type (`guard.sagemaker`).
A call that looks like an operation on a client of unknown service is reported as unattributed,
so the scan never silently misses one.
"""

from __future__ import annotations

import ast
import builtins
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import botocore
import botocore.session

Operation = tuple[str, str]
ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIR = ROOT / "layers" / "shared" / "ssm_guard"
# Never imported by a Lambda function: the embedded local AWS.
EXCLUDED_PACKAGES = ("ssm_guard.local",)
_BUILTINS = frozenset(dir(builtins))


@cache
def _botocore_session() -> botocore.session.Session:
    return botocore.session.get_session()


@cache
def service_operations(service: str) -> dict[str, str]:
    """snake_case method name -> API operation name, for one boto3 service."""
    model = _botocore_session().get_service_model(service)
    return {botocore.xform_name(op): op for op in model.operation_names}


@cache
def paginator_operation(service: str, name: str) -> str | None:
    ops = service_operations(service)
    return ops.get(name)


@cache
def waiter_operation(service: str, name: str) -> str | None:
    try:
        model = _botocore_session().get_waiter_model(service)
    except Exception:  # noqa: BLE001 - a service without waiters
        return None
    for waiter in model.waiter_names:
        if botocore.xform_name(waiter) == name:
            return str(model.get_waiter(waiter).operation)
    return None


def service_of_stub_module(module: str) -> str | None:
    """`mypy_boto3_sagemaker` -> `sagemaker`; `mypy_boto3_sagemaker_runtime` ->
    `sagemaker-runtime`."""
    if not module.startswith("mypy_boto3_"):
        return None
    return module.split(".")[0][len("mypy_boto3_") :].replace("_", "-")


@dataclass(frozen=True)
class CallSite:
    operation: Operation
    file: str
    line: int
    node: str


@dataclass
class Node:
    """A unit of code: a module's top level, a function, a method, a class body."""

    id: str
    module: str
    ast_nodes: list[ast.AST]
    class_id: str | None = None
    edges: set[str] = field(default_factory=set)
    calls: list[CallSite] = field(default_factory=list)
    library: set[str] = field(default_factory=set)


@dataclass
class Module:
    name: str
    path: Path
    tree: ast.Module
    symbols: dict[str, tuple[str, str]] = field(default_factory=dict)
    """name -> ("node", node id) | ("module", module) | ("external", dotted name)."""


@dataclass(frozen=True)
class Unattributed:
    file: str
    line: int
    method: str
    services: tuple[str, ...]


class CodeIndex:
    """Every module of the package, the function handlers, and the references between them."""

    def __init__(
        self,
        services: frozenset[str],
        extra_files: dict[str, Path],
        package_dir: Path = PACKAGE_DIR,
    ) -> None:
        self.services = services
        self.package_dir = package_dir
        self.op_names: dict[str, set[str]] = {}
        for service in services:
            for method in service_operations(service):
                self.op_names.setdefault(method, set()).add(service)
        self.modules: dict[str, Module] = {}
        self.nodes: dict[str, Node] = {}
        self.methods_by_name: dict[str, set[str]] = {}
        self.client_fields: dict[str, str] = {}
        """Class attribute annotated with a client type -> service (`Guard.sagemaker`)."""
        self.client_factories: dict[str, str] = {}
        """Function node returning a client type -> service (`clients.sagemaker`)."""
        self.unattributed: list[Unattributed] = []
        for path in sorted(package_dir.rglob("*.py")):
            name = self._module_name(path)
            if not name.startswith(EXCLUDED_PACKAGES):
                self._load(name, path)
        for name, path in extra_files.items():
            self._load(name, path)
        for module in self.modules.values():
            self._index_symbols(module)
        for module in self.modules.values():
            self._index_types(module)
        for node in self.nodes.values():
            self._scan(node)

    # ---- loading -------------------------------------------------------------------------

    def _module_name(self, path: Path) -> str:
        parts = list(path.relative_to(self.package_dir.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        return ".".join(parts)

    def _load(self, name: str, path: Path) -> None:
        tree = ast.parse(path.read_text(), filename=str(path))
        self.modules[name] = Module(name=name, path=path, tree=tree)

    def _add_node(self, node: Node) -> None:
        self.nodes[node.id] = node

    def _index_symbols(self, module: Module) -> None:
        top = Node(id=module.name, module=module.name, ast_nodes=[])
        self._add_node(top)
        for stmt in module.tree.body:
            if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
                node_id = f"{module.name}.{stmt.name}"
                self._add_node(Node(id=node_id, module=module.name, ast_nodes=[stmt]))
                module.symbols[stmt.name] = ("node", node_id)
                top.ast_nodes.extend(stmt.decorator_list)
            elif isinstance(stmt, ast.ClassDef):
                self._index_class(module, stmt)
            else:
                top.ast_nodes.append(stmt)
                for target in _assigned_names(stmt):
                    node_id = f"{module.name}.{target}"
                    if node_id not in self.nodes:
                        self._add_node(Node(id=node_id, module=module.name, ast_nodes=[]))
                    self.nodes[node_id].ast_nodes.append(stmt)
                    module.symbols[target] = ("node", node_id)
                    top.edges.add(node_id)
            for alias_name, target in _imports(stmt, module.name, self._is_package(module)):
                module.symbols[alias_name] = self._import_target(target)

    def _index_class(self, module: Module, stmt: ast.ClassDef) -> None:
        class_id = f"{module.name}.{stmt.name}"
        body = Node(id=class_id, module=module.name, ast_nodes=[], class_id=class_id)
        self._add_node(body)
        module.symbols[stmt.name] = ("node", class_id)
        body.ast_nodes.extend([*stmt.decorator_list, *stmt.bases])
        for item in stmt.body:
            if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                method_id = f"{class_id}.{item.name}"
                self._add_node(
                    Node(id=method_id, module=module.name, ast_nodes=[item], class_id=class_id)
                )
                self.methods_by_name.setdefault(item.name, set()).add(method_id)
                body.ast_nodes.extend(item.decorator_list)
                if item.name.startswith("__") and item.name.endswith("__"):
                    body.edges.add(method_id)
            else:
                body.ast_nodes.append(item)

    def _is_package(self, module: Module) -> bool:
        return module.path.name == "__init__.py"

    def _import_target(self, dotted: str) -> tuple[str, str]:
        if dotted in self.modules:
            return ("module", dotted)
        head, _, last = dotted.rpartition(".")
        if head in self.modules:
            return ("attr", dotted)
        return ("external", dotted)

    def _index_types(self, module: Module) -> None:
        """Client-typed class fields and client-returning functions."""
        for stmt in ast.walk(module.tree):
            if isinstance(stmt, ast.ClassDef):
                for item in stmt.body:
                    if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                        service = self._annotation_service(item.annotation, module, {})
                        if service:
                            self.client_fields[item.target.id] = service
            if isinstance(stmt, ast.FunctionDef) and stmt.returns is not None:
                service = self._annotation_service(stmt.returns, module, {})
                if service:
                    self.client_factories[f"{module.name}.{stmt.name}"] = service

    # ---- resolution ----------------------------------------------------------------------

    def _symbol(self, module: Module, name: str, local: dict[str, tuple[str, str]]):
        if name in local:
            return local[name]
        return module.symbols.get(name)

    def _resolve_attr_target(self, dotted: str) -> tuple[str, str] | None:
        head, _, last = dotted.rpartition(".")
        target = self.modules.get(head)
        if target is None:
            return None
        if dotted in self.modules:
            return ("module", dotted)
        symbol = target.symbols.get(last)
        if symbol and symbol[0] == "attr":
            return self._resolve_attr_target(symbol[1])
        return symbol

    def _annotation_service(
        self, annotation: ast.AST, module: Module, local: dict[str, tuple[str, str]]
    ) -> str | None:
        if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
            try:
                annotation = ast.parse(annotation.value, mode="eval").body
            except SyntaxError:
                return None
        if isinstance(annotation, ast.BinOp):  # `SageMakerClient | None`
            return self._annotation_service(
                annotation.left, module, local
            ) or self._annotation_service(annotation.right, module, local)
        if isinstance(annotation, ast.Name):
            symbol = self._symbol(module, annotation.id, local)
            if symbol and symbol[0] == "external":
                return service_of_stub_module(symbol[1])
        if isinstance(annotation, ast.Attribute):
            dotted = _dotted(annotation)
            if dotted:
                head = dotted.split(".")[0]
                symbol = self._symbol(module, head, local)
                if symbol and symbol[0] == "external":
                    return service_of_stub_module(symbol[1])
        return None

    # ---- scanning one node ---------------------------------------------------------------

    def _scan(self, node: Node) -> None:
        module = self.modules[node.module]
        for tree in node.ast_nodes:
            scope = _Scope(module=module, node=node, index=self)
            scope.prepare(tree)
            scope.visit(tree)

    # ---- reachability --------------------------------------------------------------------

    def reachable(self, entry: str) -> dict[str, str | None]:
        """Every node reachable from `entry`, with the node it was first reached from."""
        seen: dict[str, str | None] = {entry: None}
        queue = deque([entry])
        while queue:
            current = queue.popleft()
            for target in sorted(self.nodes[current].edges):
                if target in self.nodes and target not in seen:
                    seen[target] = current
                    queue.append(target)
        return seen

    def path_to(self, seen: dict[str, str | None], node: str) -> list[str]:
        chain = [node]
        while (parent := seen[chain[-1]]) is not None:
            chain.append(parent)
        return list(reversed(chain))

    def operations_from(
        self, entries: list[str], library: dict[str, tuple[Operation, ...]]
    ) -> dict[Operation, list[tuple[CallSite, list[str]]]]:
        """Operations reachable from the entries, each with where it is called and how."""
        found: dict[Operation, list[tuple[CallSite, list[str]]]] = {}
        for entry in entries:
            seen = self.reachable(entry)
            for node_id in seen:
                node = self.nodes[node_id]
                for call in node.calls:
                    found.setdefault(call.operation, []).append((call, self.path_to(seen, node_id)))
                for dotted in node.library:
                    for operation in _library_operations(dotted, library):
                        site = CallSite(operation, _rel(self.modules[node.module].path), 0, node_id)
                        found.setdefault(operation, []).append((site, self.path_to(seen, node_id)))
        return found

    def all_calls(self) -> Iterator[CallSite]:
        for node in self.nodes.values():
            yield from node.calls


def _library_operations(
    dotted: str, library: dict[str, tuple[Operation, ...]]
) -> tuple[Operation, ...]:
    top, last = dotted.split(".")[0], dotted.rsplit(".", 1)[-1]
    for key, operations in library.items():
        if key == dotted or (key.split(".")[0] == top and key.rsplit(".", 1)[-1] == last):
            return operations
    return ()


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _dotted(expr: ast.AST) -> str | None:
    parts: list[str] = []
    while isinstance(expr, ast.Attribute):
        parts.append(expr.attr)
        expr = expr.value
    if isinstance(expr, ast.Name):
        parts.append(expr.id)
        return ".".join(reversed(parts))
    return None


def _assigned_names(stmt: ast.stmt) -> list[str]:
    targets: list[ast.expr] = []
    if isinstance(stmt, ast.Assign):
        targets = list(stmt.targets)
    elif isinstance(stmt, ast.AnnAssign | ast.AugAssign):
        targets = [stmt.target]
    return [t.id for t in targets if isinstance(t, ast.Name)]


def _walk_outside_defs(stmt: ast.AST) -> Iterator[ast.AST]:
    """Like ast.walk, without entering function or class bodies."""
    queue = deque([stmt])
    while queue:
        item = queue.popleft()
        if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
            continue
        yield item
        queue.extend(ast.iter_child_nodes(item))


def _imports(stmt: ast.AST, module: str, is_package: bool) -> Iterator[tuple[str, str]]:
    """(bound name, dotted target) for import statements, also inside `if`/`try` blocks."""
    for item in _walk_outside_defs(stmt):
        if isinstance(item, ast.Import):
            for alias in item.names:
                if alias.asname:
                    yield alias.asname, alias.name
                else:
                    yield alias.name.split(".")[0], alias.name.split(".")[0]
        elif isinstance(item, ast.ImportFrom):
            base = item.module or ""
            if item.level:
                parts = module.split(".")
                keep = len(parts) - item.level + (1 if is_package else 0)
                base = ".".join(parts[:keep] + ([base] if base else []))
            for alias in item.names:
                yield alias.asname or alias.name, f"{base}.{alias.name}"


class _Scope(ast.NodeVisitor):
    """Walks one node's code: records references (edges), AWS calls and library calls."""

    def __init__(self, module: Module, node: Node, index: CodeIndex) -> None:
        self.module = module
        self.node = node
        self.index = index
        self.local: dict[str, tuple[str, str]] = {}
        self.locals: set[str] = set()
        self.clients: dict[str, str] = {}

    # Local names, imports and client-typed variables of the function, before walking it.
    def prepare(self, tree: ast.AST) -> None:
        if isinstance(tree, ast.FunctionDef | ast.AsyncFunctionDef):
            args = tree.args
            for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
                if arg is None:
                    continue
                self.locals.add(arg.arg)
                if arg.annotation is not None:
                    service = self.index._annotation_service(arg.annotation, self.module, {})
                    if service:
                        self.clients[arg.arg] = service
            for item in ast.walk(tree):
                if isinstance(item, ast.Import | ast.ImportFrom):
                    for name, target in _imports(
                        item, self.module.name, self.index._is_package(self.module)
                    ):
                        self.local[name] = self.index._import_target(target)
                        self.node.edges.update(self._module_edges(target))
            for item in ast.walk(tree):
                if isinstance(
                    item, ast.Assign | ast.AnnAssign | ast.For | ast.With | ast.NamedExpr
                ):
                    for target in _bound_names(item):
                        self.locals.add(target)
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    service = self.index._annotation_service(item.annotation, self.module, {})
                    if service:
                        self.clients[item.target.id] = service
            # Two passes so `sm = clients.sagemaker()` is known wherever `sm` is used.
            for _ in range(2):
                for item in ast.walk(tree):
                    if isinstance(item, ast.Assign) and len(item.targets) == 1:
                        target = item.targets[0]
                        if isinstance(target, ast.Name):
                            service = self._client_of(item.value)
                            if service:
                                self.clients[target.id] = service
        elif isinstance(tree, ast.stmt):
            for _name, target in _imports(
                tree, self.module.name, self.index._is_package(self.module)
            ):
                self.node.edges.update(self._module_edges(target))

    def _module_edges(self, dotted: str) -> set[str]:
        """Importing runs the top level of the module and its packages; a name imported from a
        module is reached only where it is used."""
        edges: set[str] = set()
        parts = dotted.split(".")
        for end in range(1, len(parts) + 1):
            name = ".".join(parts[:end])
            if name in self.index.modules:
                edges.add(name)
        return edges

    # What an expression refers to: ("node", id) | ("module", name) | ("external", dotted)
    # | ("client", service) | ("self", class id) | None.
    def resolve(self, expr: ast.AST) -> tuple[str, str] | None:
        if isinstance(expr, ast.Name):
            if expr.id in self.clients:
                return ("client", self.clients[expr.id])
            if expr.id in {"self", "cls"} and self.node.class_id:
                return ("self", self.node.class_id)
            if expr.id in self.local:
                return self._follow(self.local[expr.id])
            if expr.id in self.locals:
                return None
            symbol = self.module.symbols.get(expr.id)
            return self._follow(symbol) if symbol else None
        if isinstance(expr, ast.Attribute):
            base = self.resolve(expr.value)
            if base is None:
                if expr.attr in self.index.client_fields:
                    return ("client", self.index.client_fields[expr.attr])
                return None
            kind, value = base
            if kind == "module":
                dotted = f"{value}.{expr.attr}"
                if dotted in self.index.modules:
                    return ("module", dotted)
                symbol = self.index.modules[value].symbols.get(expr.attr)
                return self._follow(symbol) if symbol else None
            if kind == "external":
                return ("external", f"{value}.{expr.attr}")
            if kind in {"node", "self"}:
                method = f"{value}.{expr.attr}"
                if method in self.index.nodes:
                    return ("node", method)
                if expr.attr in self.index.client_fields:
                    return ("client", self.index.client_fields[expr.attr])
                return None
            return None
        if isinstance(expr, ast.Call):
            service = self._client_of(expr)
            return ("client", service) if service else None
        return None

    def _follow(self, symbol: tuple[str, str]) -> tuple[str, str] | None:
        if symbol[0] == "attr":
            return self.index._resolve_attr_target(symbol[1]) or ("external", symbol[1])
        return symbol

    def _client_of(self, expr: ast.AST) -> str | None:
        """The service of the client an expression makes, if it makes one."""
        if not isinstance(expr, ast.Call):
            if isinstance(expr, ast.Name | ast.Attribute):
                resolved = self.resolve(expr)
                return resolved[1] if resolved and resolved[0] == "client" else None
            return None
        func = expr.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        first = expr.args[0] if expr.args else None
        if (
            name == "client"
            and isinstance(first, ast.Constant)
            and isinstance(first.value, str)
            and first.value in _known_services()
        ):
            return first.value
        target = self.resolve(func)
        if target and target[0] == "node":
            return self.index.client_factories.get(target[1])
        return None

    # Walking. Annotations are not followed: with postponed evaluation they never run.
    def visit_arg(self, node: ast.arg) -> None:
        return

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        for item in [*node.decorator_list, *node.args.defaults, *node.args.kw_defaults, *node.body]:
            if item is not None:
                self.visit(item)

    visit_AsyncFunctionDef = visit_FunctionDef  # noqa: N815

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self.visit(node.target)
        if node.value is not None:
            self.visit(node.value)

    def visit_Name(self, node: ast.Name) -> None:
        self._reference(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        resolved = self._reference(node)
        base = self.resolve(node.value)
        if base is not None and base[0] == "client":
            # `client.put_parameter(...)`, and `functools.partial(client.put_parameter, ...)`.
            operation = service_operations(base[1]).get(node.attr)
            if operation:
                self._record((base[1], operation), node.lineno)
        elif resolved is None and base is None:
            # A method of an object whose type the scan cannot tell: any package method.
            self.node.edges.update(self.index.methods_by_name.get(node.attr, ()))
            self._maybe_unattributed(node)
        self.generic_visit(node)

    def _reference(self, expr: ast.AST) -> tuple[str, str] | None:
        resolved = self.resolve(expr)
        if resolved is None:
            return None
        kind, value = resolved
        if kind in {"node", "module"}:
            self.node.edges.add(value)
        elif kind == "external":
            self.node.library.add(value)
        return resolved

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        first = node.args[0] if node.args else None
        literal = first.value if isinstance(first, ast.Constant) else None
        if (
            isinstance(func, ast.Attribute)
            and func.attr in {"get_paginator", "get_waiter"}
            and isinstance(literal, str)
        ):
            base = self.resolve(func.value)
            if base is not None and base[0] == "client":
                lookup = paginator_operation if func.attr == "get_paginator" else waiter_operation
                operation = lookup(base[1], literal)
                if operation:
                    self._record((base[1], operation), node.lineno)
        self.generic_visit(node)

    def _record(self, operation: Operation, line: int) -> None:
        self.node.calls.append(CallSite(operation, _rel(self.module.path), line, self.node.id))

    def _maybe_unattributed(self, node: ast.Attribute) -> None:
        """An operation-like method on a receiver of unknown type (one-word names such as
        `search` or `publish` are too common to tell, and are not flagged)."""
        services = self.index.op_names.get(node.attr)
        if not services or "_" not in node.attr:
            return
        if isinstance(node.value, ast.Name) and node.value.id in _BUILTINS:
            return
        self.index.unattributed.append(
            Unattributed(_rel(self.module.path), node.lineno, node.attr, tuple(sorted(services)))
        )


def _bound_names(item: ast.AST) -> list[str]:
    names: list[str] = []
    targets: list[ast.AST] = []
    if isinstance(item, ast.Assign):
        targets = list(item.targets)
    elif isinstance(item, ast.AnnAssign | ast.NamedExpr | ast.For):
        targets = [item.target]
    elif isinstance(item, ast.With):
        targets = [w.optional_vars for w in item.items if w.optional_vars is not None]
    for target in targets:
        for sub in ast.walk(target):
            if isinstance(sub, ast.Name):
                names.append(sub.id)
    return names


@cache
def _known_services() -> frozenset[str]:
    return frozenset(_botocore_session().get_available_services())
