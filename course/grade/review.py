"""What an instructor should look at: answers that reach past their own code, and answers that
are close copies of the reference the course ships.

The course is open: the package a student installs holds every reference, so pasting one cannot be
prevented, only seen. Both checks read the answer's syntax tree in the grader (nothing runs) and
never change points: they add a sentence to the feedback and an entry to the gradebook's `review`
column. Reaching out: any import other than numpy and math, `exec`, `eval`, `compile`,
`__import__`, `importlib`, `globals`, `sys.modules`, any dunder name or attribute
(`().__class__.__subclasses__()`), ... or a name that the notebook's setup cells imported from
`course` and the question may not use. Copying: each graded function, its docstring
dropped and every name renamed in order of appearance, compared token by token with the course's
reference (`similarity`, 0 to 1); at SIMILAR or above it is flagged with the figure.
"""

import ast
import difflib
import functools
import inspect
import textwrap

SIMILAR = 0.95  # flagged at or above; the official solutions score 0.25-0.97 (test_copies.py)
ALLOWED_MODULES = {"numpy", "math"}  # what an answer may import without a second look
REACHING = {"exec", "eval", "compile", "__import__", "importlib", "globals", "locals", "vars",
            "getattr", "setattr", "__builtins__", "builtins", "sys", "modules", "__dict__",
            "__globals__", "__code__", "__closure__", "__wrapped__", "open", "ctypes",
            "subprocess", "os", "use_or_reference", "inspect", "marshal", "pickle", "types"}


def setup_names(setup_sources):
    """{name: module} bound by `import`/`from ... import` of `course` in the setup cells."""
    names = {}
    for source in setup_sources:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "course":
                for a in node.names:
                    names[a.asname or a.name] = f"{node.module}.{a.name}"
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.split(".")[0] == "course":
                        names[(a.asname or a.name).split(".")[0]] = a.name
    return names


def reaching(tree, course_names=None, allowed=()):
    """Why an answer reaches past its own code (an import, exec, a course name), or None.

    course_names: {name: dotted origin} the setup cells imported from `course`; allowed: dotted
    names the question may use (Task.may_use), which are not flagged."""
    course_names = course_names or {}
    found = []
    for node in ast.walk(tree) if tree is not None else []:
        if isinstance(node, ast.Import):
            found += [f"imports `{a.name}`" for a in node.names
                      if a.name.split(".")[0] not in ALLOWED_MODULES]
        elif isinstance(node, ast.ImportFrom):
            if node.level or (node.module or "").split(".")[0] not in ALLOWED_MODULES:
                found.append(f"imports from `{'.' * node.level}{node.module or ''}`")
        elif isinstance(node, ast.Name):
            if node.id in REACHING or node.id.startswith("__"):
                found.append(f"uses `{node.id}`")
            elif node.id in course_names and course_names[node.id] not in allowed:
                found.append(f"uses `{node.id}` (from `{course_names[node.id]}`)")
        elif isinstance(node, ast.Attribute) and (node.attr in REACHING or (
                node.attr.startswith("__") and node.attr.endswith("__"))):
            found.append(f"uses `.{node.attr}`")
    found = list(dict.fromkeys(found))
    return ", ".join(found[:4]) + (", ..." if len(found) > 4 else "") if found else None


# ---- similarity to the shipped reference --------------------------------------------------------

def tokens(fn_node):
    """The function as a token list: node types, constants, attribute names, and every other
    name replaced by its order of first appearance (renaming variables changes nothing)."""
    body = list(fn_node.body)
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:]  # the docstring
    node = ast.FunctionDef(name="f", args=fn_node.args, body=body or [ast.Pass()],
                           decorator_list=[], returns=None)
    names, out = {}, []

    def canon(name):
        return names.setdefault(name, f"v{len(names)}")

    for n in ast.walk(node):
        out.append(type(n).__name__)
        if isinstance(n, ast.Name):
            out.append(canon(n.id))
        elif isinstance(n, ast.arg):
            out.append(canon(n.arg))
        elif isinstance(n, ast.Attribute):
            out.append("." + n.attr)
        elif isinstance(n, ast.Constant):
            out.append(repr(n.value)[:40])
    return out


def similarity(a, b):
    """0 to 1: how much of two token lists match in order (difflib's ratio)."""
    if not a or not b:
        return 0.0
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


@functools.cache
def _reference_tokens(fn):
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError):
        return None
    node = next((n for n in tree.body if isinstance(n, (ast.FunctionDef,
                                                        ast.AsyncFunctionDef))), None)
    return tokens(node) if node is not None else None


def _defined(tree, name):
    """The last top-level def of `name` in the cell, or None."""
    found = [n for n in (tree.body if tree is not None else [])
             if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == name]
    return found[-1] if found else None


def closest(tree, references):
    """(highest similarity, function name) of the cell's defs against the references."""
    best = (0.0, None)
    for ref in references:
        ref_tokens = _reference_tokens(ref)
        node = _defined(tree, ref.__name__)
        if ref_tokens is None or node is None:
            continue
        best = max(best, (round(similarity(tokens(node), ref_tokens), 2), ref.__name__))
    return best


def flag(tree, task=None, course_names=None):
    """One sentence for the instructor about this answer, or None."""
    allowed = set()
    for entry in getattr(task, "may_use", ()) if task is not None else ():
        allowed.add(entry if isinstance(entry, str) else f"{entry.__module__}.{entry.__name__}")
    parts = []
    reason = reaching(tree, course_names, allowed)
    if reason:
        parts.append(reason)
    if task is not None:
        score, name = closest(tree, task.reference)
        if name is not None and score >= SIMILAR:
            parts.append(f"is {score:.0%} similar to the course's reference `{name}` "
                         "(normalised code)")
    return "; ".join(parts) or None
