"""Graded tasks of notebook 04: batchnorm_forward in train and test mode, and PyTorch's update."""

import copy
from functools import partial

import numpy as np

from course.batchnorm import DEFAULT_EPS, DEFAULT_MOMENTUM, batchnorm_forward
from course.running_stats import pytorch_running_update
from course.tasks.base import Case, Mistake, Task, explicit_bn_param, random_gamma_beta
from course.tasks.diagnose import Running, batchnorm_view

NOTEBOOK = "04_running_stats"

# ----------------------------------------------------------------------------------------------
# batchnorm_forward: one forward function, two modes


def _forward(x, gamma, beta, bn_param, *, reversed_momentum=False, unbiased_running=False,
             write_back=True, var_default=1.0, test_batch_stats=False, test_eps=True,
             test_beta=True, test_updates=False, train_running=False):
    """batchnorm_forward with switches that plant one known mistake each (all off = correct)."""
    mode = bn_param.get("mode", "train")
    eps = bn_param.get("eps", DEFAULT_EPS)
    m = bn_param.get("momentum", DEFAULT_MOMENTUM)
    N, D = x.shape
    rm = bn_param.get("running_mean", np.zeros(D))  # (D,)
    rv = bn_param.get("running_var", np.full(D, var_default))  # (D,)
    keep = 1 - m if reversed_momentum else m  # weight of the old running value
    if mode == "train" or test_updates:
        mu, var = x.mean(axis=0), x.var(axis=0)  # (D,), (D,)
        fed = var * N / (N - 1) if unbiased_running else var  # (D,)
        new_rm, new_rv = keep * rm + (1 - keep) * mu, keep * rv + (1 - keep) * fed  # (D,)
    if mode == "train" and train_running:  # normalised with the buffers, not the batch
        out = gamma * (x - rm) / np.sqrt(rv + eps) + beta  # (N, D)
    elif mode == "train":
        out = gamma * (x - mu) / np.sqrt(var + eps) + beta  # (N, D)
    else:
        if test_batch_stats:
            c, v = x.mean(axis=0), x.var(axis=0)  # (D,), (D,)
        else:
            c, v = rm, rv
        out = gamma * (x - c) / np.sqrt(v + eps if test_eps else v)  # (N, D)
        if test_beta:
            out = out + beta
        if not test_updates:
            new_rm, new_rv = rm, rv
    if write_back:
        bn_param["running_mean"], bn_param["running_var"] = new_rm, new_rv
    return out, {}


def _features(rng, N, D):
    """A batch whose features have different means and spreads."""
    return rng.normal(rng.normal(0.0, 3.0, D), rng.uniform(0.5, 3.0, D), (N, D))  # (N, D)


def _modes_cases(rng):
    cases = []
    D = 4
    gamma, beta = random_gamma_beta(rng, D, beta_mean=1.0)
    x = _features(rng, 8, D)
    x[:, 0] += 1e6  # a feature far from zero: a one-pass E[x²] − E[x]² variance cancels there
    cases.append(Case("one train step on a batch (8, 4), one feature near 1e6, updates the "
                      "running statistics", {
        "xs": [x], "x_test": None, "gamma": gamma, "beta": beta,
        "bn_param": explicit_bn_param(running_mean=rng.normal(0.0, 1.0, D),
                                      running_var=rng.uniform(0.5, 2.0, D))}))
    D = 3
    gamma, beta = random_gamma_beta(rng, D, beta_mean=1.0)
    cases.append(Case("test mode on a fresh layer (5, 3): no running statistics in bn_param yet", {
        "xs": [], "x_test": _features(rng, 5, D), "gamma": gamma, "beta": beta,
        "bn_param": {"eps": 1e-3}}))
    D = 5
    gamma, beta = random_gamma_beta(rng, D, beta_mean=1.0)
    # Small variances (about 0.01 to 0.5) and eps = 1e-3, so a missing eps shows clearly.
    xs = [0.3 * _features(rng, 6, D) for _ in range(3)]
    cases.append(Case("three train steps (6, 5), momentum 0.8, then a test batch (4, 5)", {
        "xs": xs, "x_test": 0.3 * _features(rng, 4, D), "gamma": gamma, "beta": beta,
        "bn_param": {"eps": 1e-3, "momentum": 0.8, "running_mean": np.zeros(D),
                     "running_var": np.ones(D)}}))
    return cases


def _modes_run(fns, inputs):
    (forward,) = fns
    bn_param = inputs["bn_param"]
    had_stats = "running_mean" in bn_param
    result = {}
    for x in inputs["xs"]:
        bn_param["mode"] = "train"
        result["out_train"], _ = forward(x, inputs["gamma"], inputs["beta"], bn_param)
    if inputs["x_test"] is not None:
        bn_param["mode"] = "test"
        result["out_test"], _ = forward(inputs["x_test"], inputs["gamma"], inputs["beta"],
                                        bn_param)
    if had_stats:  # what the layer will use next time: the buffers left in bn_param
        result["running_mean"] = bn_param["running_mean"]
        result["running_var"] = bn_param["running_var"]
    return result


_MODE_MISTAKES = (
    Mistake("momentum_reversed",
            "momentum convention reversed: in this course momentum is the weight of the OLD "
            "value, running = momentum * running + (1 - momentum) * batch statistic",
            (partial(_forward, reversed_momentum=True),)),
    Mistake("not_written_back",
            "running statistics not written back: store the updated running_mean and "
            "running_var in bn_param, or the next call (and test mode) never sees them",
            (partial(_forward, write_back=False),)),
    Mistake("unbiased_running_var",
            "running_var averages the unbiased (divide by N - 1) batch variance, as PyTorch "
            "does; this course averages the biased variance it normalises with",
            (partial(_forward, unbiased_running=True),)),
    Mistake("batch_stats_in_test",
            "test mode normalises with the test batch's own mean and variance: use the running "
            "statistics, so a prediction does not depend on the rest of the batch",
            (partial(_forward, test_batch_stats=True),)),
    Mistake("published_test_mode",
            "test mode computes (x - running_mean) * gamma / sqrt(running_var), the published "
            "version that drops both eps and beta: use gamma * (x - running_mean) / "
            "sqrt(running_var + eps) + beta",
            (partial(_forward, test_eps=False, test_beta=False),)),
    Mistake("eps_missing_in_test",
            "eps missing in test mode: divide by sqrt(running_var + eps), as in train mode",
            (partial(_forward, test_eps=False),)),
    Mistake("beta_missing_in_test",
            "beta missing in test mode: the output is gamma * x_hat + beta in both modes",
            (partial(_forward, test_beta=False),)),
    Mistake("running_var_zeros",
            "running_var starts at zeros when bn_param has none: start it at ones (zeros make "
            "test-mode outputs explode until the average warms up)",
            (partial(_forward, var_default=0.0),)),
    Mistake("test_updates_running",
            "test mode changed the running statistics: only train mode updates them; test mode "
            "only reads them",
            (partial(_forward, test_updates=True),)),
    Mistake("running_in_train",
            "train mode normalised with the running statistics: in train mode use the batch's "
            "own mean and variance (and then update the running ones); only test mode reads "
            "running_mean and running_var",
            (partial(_forward, train_running=True),)),
)


def _modes_symbols(inputs):
    """N of the last train batch, γ and β."""
    out = {"γ": inputs["gamma"], "β": inputs["beta"]}
    if inputs["xs"]:
        out["N"] = inputs["xs"][-1].shape[0]
    return out

def _trained_buffers(inputs, steps=None):
    """The running (mean, var) the reference leaves after the case's train steps (the first
    `steps` of them)."""
    bn_param = copy.deepcopy(inputs["bn_param"])
    for x in inputs["xs"][:steps]:
        bn_param["mode"] = "train"
        batchnorm_forward(x, inputs["gamma"], inputs["beta"], bn_param)
    D = len(inputs["gamma"])
    return bn_param.get("running_mean", np.zeros(D)), bn_param.get("running_var", np.ones(D))


def _modes_buffer(stat):
    default = np.zeros if stat == "mean" else np.ones
    return Running(
        start=lambda inputs: inputs["bn_param"].get(f"running_{stat}",
                                                    default(len(inputs["gamma"]))),
        batches=lambda inputs: inputs["xs"],
        keep=lambda inputs: inputs["bn_param"].get("momentum", DEFAULT_MOMENTUM), stat=stat)


# ----------------------------------------------------------------------------------------------
# pytorch_running_update: the same buffers in PyTorch's convention


def _torch_update(running_mean, running_var, x, momentum, *, weight_of_old=False, ddof=1):
    """PyTorch's running-statistics update, with switches that plant known mistakes."""
    mu, var = x.mean(axis=0), x.var(axis=0, ddof=ddof)  # (D,), (D,)
    new = 1 - momentum if weight_of_old else momentum  # weight of the new batch statistic
    return (1 - new) * running_mean + new * mu, (1 - new) * running_var + new * var


def _torch_cases(rng):
    cases = []
    for N, D, m, far in ((8, 3, 0.1, 0.0), (4, 6, 0.3, 3e6), (2, 2, 0.05, 0.0)):
        x = _features(rng, N, D)
        x[:, -1] += far  # far from zero: a one-pass E[x²] − E[x]² variance cancels there
        where = ", last feature near 3e6" if far else ""
        cases.append(Case(f"batch ({N}, {D}){where}, PyTorch momentum {m}", {
            "running_mean": rng.normal(0.0, 1.0, D), "running_var": rng.uniform(0.5, 2.0, D),
            "x": x, "momentum": m}))
    return cases


def _torch_run(fns, inputs):
    (update,) = fns
    rm, rv = update(inputs["running_mean"], inputs["running_var"], inputs["x"],
                    inputs["momentum"])
    return {"running_mean": rm, "running_var": rv}


_TORCH_MISTAKES = (
    Mistake("course_convention_and_biased",
            "both conventions of this course kept: in PyTorch momentum weighs the NEW value and "
            "running_var is fed the unbiased (ddof=1) batch variance",
            (partial(_torch_update, weight_of_old=True, ddof=0),)),
    Mistake("course_convention",
            "momentum used as the weight of the OLD value (this course's convention): PyTorch's "
            "momentum weighs the NEW value, running = (1 - momentum) * running + momentum * batch",
            (partial(_torch_update, weight_of_old=True),)),
    Mistake("biased_var",
            "running_var fed the biased batch variance: PyTorch stores the unbiased one "
            "(divide by N - 1, np.var(x, axis=0, ddof=1)), although its forward pass normalises "
            "with the biased variance",
            (partial(_torch_update, ddof=0),)),
)


TASKS = [
    Task(notebook=NOTEBOOK, points=3,
         checks="train steps that update the running statistics, then test-mode outputs",
         reference=(batchnorm_forward,), make_cases=_modes_cases, run=_modes_run,
         may_use=(),
         mistakes=_MODE_MISTAKES, mutable=("bn_param",), symbols=_modes_symbols,
         views={"out_train": batchnorm_view(lambda inputs: inputs["xs"][-1],
                                            running=lambda inputs: _trained_buffers(inputs, -1)),
                "out_test": batchnorm_view(lambda inputs: inputs["x_test"], stats="running",
                                           running=_trained_buffers),
                "running_mean": _modes_buffer("mean"), "running_var": _modes_buffer("var")}),
    Task(notebook=NOTEBOOK, points=2,
         checks="one update of the running statistics in PyTorch's convention",
         reference=(pytorch_running_update,), make_cases=_torch_cases, run=_torch_run,
         may_use=(),
         mistakes=_TORCH_MISTAKES,
         symbols=lambda inputs: {"N": inputs["x"].shape[0]},
         views={k: Running(start=lambda inputs, k=k: inputs[k],
                           batches=lambda inputs: [inputs["x"]],
                           keep=lambda inputs: 1 - inputs["momentum"],  # PyTorch: weight of new
                           stat=k[len("running_"):], unbiased=True)
                for k in ("running_mean", "running_var")}),
]
