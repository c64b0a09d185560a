"""Copies and reaching out, read from the answer's syntax tree: what is flagged for review, where
honest answers fall, and that renaming does not hide a pasted reference. (End to end, with real
processes: test_allowlist.py's pasted references and routes.)"""

import ast

import numpy as np
import pytest
from grade_helpers import COURSE, SOURCES, answer_index, auto

from course.grade import review, submission

SETUP_NAMES = {"reference_forward": "course.batchnorm.batchnorm_forward", "course": "course",
               "batchnorm_forward": "course.batchnorm.batchnorm_forward"}


@pytest.mark.parametrize("source, word", [
    ("import torch", "imports `torch`"),
    ("import numpy.linalg as la, scipy", "imports `scipy`"),
    ("from course.batchnorm import batchnorm_forward", "imports from `course.batchnorm`"),
    ("from . import x", "imports from `.`"),
    ("exec('1')", "uses `exec`"),
    ("eval('1')", "uses `eval`"),
    ("f = __import__('course')", "uses `__import__`"),
    ("m = importlib.import_module('x')", "uses `importlib`"),
    ("g = globals()['x']", "uses `globals`"),
    ("m = sys.modules['course']", "uses `sys`"),
    ("f = np.__dict__", "uses `.__dict__`"),
    ("k = ().__class__.__base__.__subclasses__()", "uses `.__subclasses__`"),
    ("b = __builtins__", "uses `__builtins__`"),
    ("def f(x):\n    return reference_forward(x)", "uses `reference_forward` (from"),
    ("def f(x):\n    return course.batchnorm.batchnorm_forward(x)", "uses `course` (from"),
])
def test_reaching_past_the_answer_is_named(source, word):
    assert word in review.reaching(ast.parse(source), SETUP_NAMES)


@pytest.mark.parametrize("source", [
    "import numpy as np\nimport math\nfrom numpy.linalg import norm",
    "def f(x):\n    mu = np.mean(x, axis=0)\n    return (x - mu) / math.sqrt(2)",
])
def test_numpy_math_and_own_code_are_not_flagged(source):
    assert review.reaching(ast.parse(source), SETUP_NAMES) is None


def test_a_building_block_the_question_may_use_is_not_flagged():
    tree = ast.parse("def f(x, g, b, p):\n    return batchnorm_forward(x.T, g, b, p)")
    assert review.reaching(tree, SETUP_NAMES, {"course.batchnorm.batchnorm_forward"}) is None
    assert "batchnorm_forward" in review.reaching(tree, SETUP_NAMES, set())


def test_setup_names_come_from_the_official_setup_cells():
    names = review.setup_names(COURSE.setup("03_backward_pass"))
    assert names["batchnorm_backward_staged"] == "course.batchnorm.batchnorm_backward_staged"
    assert names["reference_backward"] == "course.batchnorm.batchnorm_backward"
    assert names["numerical_gradient_array"] == "course.gradcheck.numerical_gradient_array"
    assert "np" not in names


def test_the_solutions_are_not_flagged_as_copies():
    """Where an honest answer falls: the official solutions stay below the threshold, except
    where a few lines leave no other way to write them (noted, never a deduction)."""
    scores = {}
    for nb_id, nb in SOURCES.items():
        for q in auto(nb_id):
            tree = ast.parse(nb.cells[answer_index(nb, q.grade_id)].source)
            scores[q.column] = review.closest(tree, COURSE.tasks[nb_id, q.grade_id].reference)[0]
    flagged = sorted(c for c, s in scores.items() if s >= review.SIMILAR)
    assert flagged == ["06_in_practice:sync_batchnorm_backward"], scores
    assert np.median(list(scores.values())) < 0.7


def test_renaming_and_docstrings_do_not_hide_a_copy():
    ref = ("def f(x, eps):\n    '''Doc.'''\n    mu = x.mean(0)\n"
           "    return (x - mu) / (x.var(0) + eps)\n")
    renamed = "def g(a, e):\n    m = a.mean(0)  # mine\n    return (a - m) / (a.var(0) + e)\n"
    other = "def g(a, e):\n    return np.tanh(a) * e + np.cumsum(a, axis=1)\n"
    tokens = [review.tokens(ast.parse(s).body[0]) for s in (ref, renamed, other)]
    assert review.similarity(tokens[0], tokens[1]) == 1.0
    assert review.similarity(tokens[0], tokens[2]) < 0.6




def test_the_official_answers_reach_for_nothing_they_may_not_use():
    """The solutions call only numpy and the building blocks their Task declares: no flag but
    the one similarity the threshold cannot avoid (see above)."""
    flags = {}
    for nb_id, nb in SOURCES.items():
        flags.update({f"{nb_id}:{g}": f for g, f in submission.extract(COURSE, nb_id, nb)
                      .flags.items()})
    assert list(flags) == ["06_in_practice:sync_batchnorm_backward"], flags
    assert "similar" in flags["06_in_practice:sync_batchnorm_backward"]
