"""course.tasks.diagnose, one detector at a time, and the rules that turn its findings into words:
a cause is named only when it fits every failing case and no rival does; numbers are printed
with the digits that show a difference; what a student returns is compared as returned."""

import numpy as np
import pytest

from course.batchnorm import batchnorm_backward_alt, batchnorm_forward
from course.checks import check
from course.rmsnorm import rmsnorm_backward, rmsnorm_forward
from course.tasks import Case, Task, evaluate_all, get, run_case
from course.tasks import diagnose as dg
from course.tasks.base import _agreed, _Pending, _regroup

RNG = np.random.default_rng(5)


def ctx_for(task, case, impl, key):
    """The detectors' view of one output of impl on one case."""
    got, want, _ = _regroup(task, run_case(task, impl, case).outputs,
                            run_case(task, task.reference, case).outputs)  # lists joined
    return dg.Ctx(key, got[key], want[key], want, case.inputs, dg._views(task, key),
                  task.symbols(case.inputs) if task.symbols else {}, task.rtol, task.atol)


def ids(causes):
    return {c.id for c in causes}


def _bn_case(N=6, D=4, tiny=None, far=None):
    x = RNG.normal(1.0, 2.0, (N, D))
    if tiny is not None:
        x[:, tiny] = 3.0 + 1e-3 * RNG.normal(size=N)
    if far is not None:
        x[:, far] = 1e6 + RNG.normal(size=N)
    gamma, beta = RNG.uniform(0.5, 2.0, D) * np.array([1, -1] * (D // 2)), RNG.normal(size=D)
    return Case("toy", {"x": x, "gamma": gamma, "beta": beta, "bn_param": {"mode": "train"}})


BN = get("batchnorm_forward", "02_forward_pass")


def _fwd(fn):
    def forward(x, gamma, beta, bn_param):
        return fn(x, gamma, beta, bn_param.get("eps", 1e-5)), {}
    return (forward,)


def _x_hat(x, eps, ddof=0):
    return (x - x.mean(0)) / np.sqrt(x.var(0, ddof=ddof) + eps)


# ---------------------------------------------------------------- printing numbers

def test_digits_grow_until_a_difference_shows():
    assert dg._pair([1.0, 0.2391], [1.0, 0.2394]) == "[1, 0.2391] instead of [1, 0.2394]"
    assert dg._pair([0.5], [0.7]) == "[0.5] instead of [0.7]"
    assert dg._digits([1 + 1e-9], [1.0]) == 10


def test_a_rounded_output_is_named_and_never_printed_as_equal():
    case = _bn_case(tiny=2)
    rounded = _fwd(lambda x, g, b, e: np.round(g * _x_hat(x, e) + b, 3))
    ctx = ctx_for(BN, case, rounded, "out")
    assert ids(dg.detect_rounded(ctx)) == {"rounded"}
    text = dg.located(ctx)
    for got, want in (p.split(" instead of ") for p in text.split("is ")[1:] if " instead " in p):
        assert got.strip() != want.split(" (")[0].strip()


def test_zero_claim_only_beside_small_expected_values():
    task = get("layernorm_forward")
    case = task.cases(0)[2]  # tiny activations: ε breaks scale invariance there

    def bn_axes_backward(dout, cache):
        x_hat, gamma = cache["x_hat"], cache["gamma"]
        N = dout.shape[0]
        db, dg_ = dout.sum(0), (dout * x_hat).sum(0)
        return gamma * cache["rows"]["inv_std"][:, None] / N * (N * dout - db - x_hat * dg_), \
            dg_, db

    impl = (task.reference[0], bn_axes_backward)
    ctx = ctx_for(task, case, impl, "dx")
    text = dg._located_gradient(ctx, ctx.view(dg.Gradient))
    assert "per feature" not in text and "over the batch" not in text  # layer norm's words
    assert "each example's D features, per example" in text
    for part in text.split("; "):
        if "(≈ 0)" in part:
            want = part.split(" instead of ")[1]
            values = [float(v) for v in want.strip("[] (≈0)…").split(", ") if v not in ("…",)]
            assert max(abs(v) for v in values) < 1e-2


# ---------------------------------------------------------------- the detectors, one by one

def test_detect_other_output_and_complement():
    task = get("pytorch_running_update")
    case = task.cases(0)[0]

    def swapped(rm, rv, x, m):
        a, b = task.reference[0](rm, rv, x, m)
        return b, a
    assert ids(dg.detect_other_output(ctx_for(task, case, (swapped,), "running_mean"))) == \
        {"holds:running_var"}
    sat = get("saturation_fraction")
    ctx = ctx_for(sat, sat.cases(0)[0], (lambda z, threshold=4.0: float(
        np.mean(np.abs(z) <= threshold)),), "fraction")
    assert ids(dg.detect_complement(ctx)) == {"complement"}


def test_detect_float32_precision_inside():
    ctx = ctx_for(BN, _bn_case(), _fwd(lambda x, g, b, e: (g * _x_hat(x, e) + b).astype(
        np.float32).astype(float)), "out")
    assert ids(dg.detect_float32(ctx)) == {"float32"}
    assert not dg.detect_float32(ctx_for(BN, _bn_case(), _fwd(
        lambda x, g, b, e: 2 * (g * _x_hat(x, e) + b)), "out"))


def test_detect_offset_and_scale():
    case = _bn_case()
    ctx = ctx_for(BN, case, _fwd(lambda x, g, b, e: g * _x_hat(x, e) - b), "out")
    assert ids(dg.detect_offset(ctx)) == {"offset:-2β"}
    ctx = ctx_for(BN, case, _fwd(lambda x, g, b, e: 2 * g * _x_hat(x, e) + b), "out")
    assert "scale-β:2" in ids(dg.detect_scale_without_beta(ctx))
    ctx = ctx_for(BN, case, _fwd(lambda x, g, b, e: -(g * _x_hat(x, e) + b)), "out")
    assert ids(dg.detect_scale(ctx)) == {"scale:−1"}


def test_every_fitting_factor_is_returned_and_cases_decide():
    # N = 3: ½ and 1/(N − 1) coincide; a case with N = 4 separates them.
    def reading(N):
        w = RNG.normal(size=(N, 2))
        ctx = dg.Ctx("dx", 0.5 * w, w, {"dx": w}, {}, (), {"N": N})
        return dg.Reading(tuple(dg.detect_scale(ctx)))
    three, four = reading(3), reading(4)
    assert {"scale:½", "scale:1/(N − 1)"} <= ids(three.causes)
    alone = _agreed([_Pending("", [], {"dx": three})])
    assert "dx" not in alone  # two causes fit one case: name neither
    both = _agreed([_Pending("", [], {"dx": three}), _Pending("", [], {"dx": four})])
    assert both["dx"] == {"scale:½"}


def test_detect_layout():
    task = get("spatial_batchnorm_forward")
    case = task.cases(0)[0]

    def backward(dout, cache):
        bn_cache, (N, C, H, W) = cache
        dx, dgm, db = batchnorm_backward_alt(dout.transpose(0, 2, 3, 1).reshape(-1, C), bn_cache)
        return dx.reshape(N, C, H, W), dgm, db  # back without the transpose
    ctx = ctx_for(task, case, (task.reference[0], backward), "dx")
    assert ids(dg.detect_layout(ctx)) == {"layout"}


@pytest.mark.parametrize("fn, slips", [
    (lambda x, g, b, e: g * _x_hat(x, e, ddof=1) + b, {"ddof1"}),
    (lambda x, g, b, e: g * (x - x.mean(0)) / (x.std(0) + e) + b, {"eps_outside"}),
    (lambda x, g, b, e: g * (x - x.mean(0)) / (x.std(0) + np.sqrt(e)) + b, {"sqrt_eps"}),
    (lambda x, g, b, e: g * (x - x.mean(1, keepdims=True)) / np.sqrt(
        x.var(1, keepdims=True) + e) + b, {"axes:across"}),
    (lambda x, g, b, e: g * (x - x.mean()) / np.sqrt(x.var(0) + e) + b, {"centre:whole"}),
    (lambda x, g, b, e: g * x / np.sqrt(x.var(0) + e) + b, {"not_centred"}),
    (lambda x, g, b, e: g * (x - x.mean(0)) / np.sqrt((x**2).mean(0) + e) + b, {"mean_square"}),
    (lambda x, g, b, e: b * _x_hat(x, e) + g, {"affine:swapped"}),
    (lambda x, g, b, e: _x_hat(x, e) / g + b, {"affine:divided"}),
    (lambda x, g, b, e: g * (_x_hat(x, e) + b), {"affine:beta_inside"}),
])
def test_detect_normalised_names_the_slips_of_a_standardisation(fn, slips):
    ctx = ctx_for(BN, _bn_case(N=8, D=4, tiny=1), _fwd(fn), "out")
    found = dg.detect_normalised(ctx)
    assert any({p.id for p in c.components} == slips for c in found), ids(found)


def test_detect_normalised_names_an_eps_that_was_not_read():
    case = _bn_case(N=5, D=4, tiny=1)
    case.inputs["bn_param"]["eps"] = 1e-3
    ctx = ctx_for(BN, case, _fwd(lambda x, g, b, e: g * _x_hat(x, 1e-5) + b), "out")
    assert ids(dg.detect_normalised(ctx)) == {"eps_default"}


def test_detect_normalised_test_mode_reads_the_running_statistics():
    task = get("batchnorm_forward", "04_running_stats")
    case = task.cases(0)[2]

    def forward(x, gamma, beta, bn_param):
        out, cache = batchnorm_forward(x, gamma, beta, bn_param)
        if bn_param["mode"] == "test":
            rv = bn_param["running_var"]
            out = gamma * (x - x.mean(0)) / np.sqrt(rv + bn_param["eps"]) + beta
        return out, cache
    assert ids(dg.detect_normalised(ctx_for(task, case, (forward,), "out_test"))) == \
        {"running:batch_mean"}


def test_detect_gradient_terms_in_the_exercises_words():
    task = get("batchnorm_backward")
    case = task.cases(0)[1]

    def half_var(dout, cache):
        x_hat, gamma, inv = cache["x_hat"], cache["gamma"], cache["inv_std"]
        g = dout * gamma
        return inv * (g - g.mean(0) - 0.5 * x_hat * (g * x_hat).mean(0)), \
            (dout * x_hat).sum(0), dout.sum(0)
    found = dg.detect_gradient_terms(ctx_for(task, case, (half_var,), "dx"))
    assert ids(found) == {"terms:var×½"}
    assert "dxmu gets 2 * xmu * dsq" in found[0].text  # the staged exercise's words
    rms = get("rmsnorm_forward")

    def summed(dout, cache):
        x_hat, r, g = cache["x_hat"], cache["rms"], dout * cache["gamma"]
        return (g - x_hat * (g * x_hat).sum(1, keepdims=True)) / r, (dout * x_hat).sum(0)
    found = dg.detect_gradient_terms(ctx_for(rms, rms.cases(0)[0], (rmsnorm_forward, summed),
                                             "dx"))
    assert ids(found) == {"terms:proj×N"} and "D = 5" in found[0].text


def test_detect_running_names_the_moving_average_slips():
    task = get("batchnorm_forward", "04_running_stats")
    case = task.cases(0)[2]  # three train steps

    def std_fed(x, gamma, beta, bn_param):
        out, cache = batchnorm_forward(x, gamma, beta, bn_param)
        if bn_param["mode"] == "train":
            m = bn_param["momentum"]
            bn_param["running_var"] += (1 - m) * (x.std(0) - x.var(0))
        return out, cache
    assert ids(dg.detect_running(ctx_for(task, case, (std_fed,), "running_var"))) == \
        {"running:right:std"}

    def default_momentum(x, gamma, beta, bn_param):
        return batchnorm_forward(x, gamma, beta, {**bn_param, "momentum": 0.9}) if \
            bn_param["mode"] == "test" else _update(x, gamma, beta, bn_param, 0.9)
    assert ids(dg.detect_running(ctx_for(task, case, (default_momentum,), "running_mean"))) \
        == {"running:default:right"}


def _update(x, gamma, beta, bn_param, momentum):
    p = {**bn_param, "momentum": momentum}
    out, cache = batchnorm_forward(x, gamma, beta, p)
    bn_param["running_mean"], bn_param["running_var"] = p["running_mean"], p["running_var"]
    return out, cache


def test_factors_of_the_device_count():
    task = get("sync_batchnorm_backward")
    case = task.cases(0)[0]

    def times_k(douts, cache):
        dxs, dgm, db = task.reference[0](douts, cache)
        return [d * len(douts) for d in dxs], dgm, db / len(douts)
    assert ids(dg.detect_scale(ctx_for(task, case, (times_k,), "dx"))) == {"scale:K"}
    assert ids(dg.detect_scale(ctx_for(task, case, (times_k,), "dbeta"))) == {"scale:1/K"}


def test_detect_renorm_reads_r_and_d_off_the_output():
    task = get("batch_renorm_forward")
    case = task.cases(0)[0]  # no clipping

    def d_negated(x, gamma, beta, bn_param):
        out, cache = task.reference[0](x, gamma, beta, bn_param)
        return out - 2 * gamma * cache["d"], cache
    ctx = ctx_for(task, case, (d_negated,), "out")
    assert ids(dg.detect_renorm(ctx)) == {"renorm:r=right:d=sign"}
    assert "d (its offset)" in dg.located(ctx) and "r (the slope" not in dg.located(ctx)


def test_detect_regularised_reads_the_l2_term_and_the_averaging():
    task = get("bn_net_loss")
    case = task.cases(0)[0]

    def biases_too(X, params, bn_params, y=None, reg=0.0):
        loss, grads = task.reference[0](X, params, bn_params, y, reg)
        biases = [k for k in params if k.rstrip("0123456789") == "b"]
        return loss + 0.5 * reg * sum(np.sum(params[k] ** 2) for k in biases), \
            {k: g + reg * params[k] if k in biases else g for k, g in grads.items()}
    assert ids(dg.detect_regularised(ctx_for(task, case, (biases_too,), "loss"))) == \
        {"reg:extra:b"}
    assert ids(dg.detect_regularised(ctx_for(task, case, (biases_too,), "db1"))) == \
        {"reg:extra:b"}


def test_detect_alternatives_and_overflow():
    sat = get("saturation_fraction")
    case = sat.cases(0)[1]  # entries exactly at ±threshold
    ctx = ctx_for(sat, case, (lambda z, threshold=4.0: float(np.mean(np.abs(z) >= threshold)),),
                  "fraction")
    assert ids(dg.detect_alternatives(ctx)) == {"alt:at_threshold"}
    net = get("bn_net_loss")
    big = next(c for c in net.cases(0) if "thousands" in c.label)
    small = net.cases(0)[0]
    overflow = next(v for v in dg._views(net, "loss") if isinstance(v, dg.Overflow))
    assert overflow.applies(big.inputs) and not overflow.applies(small.inputs)


def test_detect_where_numerics_fail():
    case = _bn_case(N=16, D=4, far=3)

    def one_pass(x, g, b, e):
        mu = x.mean(0)
        return g * (x - mu) / np.sqrt((x**2).mean(0) - mu**2 + e) + b
    assert ids(dg.detect_where_numerics_fail(ctx_for(BN, case, _fwd(one_pass), "out"))) == \
        {"cancellation"}
    case = _bn_case(N=16, D=4, tiny=0)
    ctx = ctx_for(BN, case, _fwd(lambda x, g, b, e: g * (x - x.mean(0)) / (x.std(0) + e) + b),
                  "out")
    assert "eps_features" in ids(dg.detect_where_numerics_fail(ctx))
    # an error spread over every feature sits nowhere in particular
    ctx = ctx_for(BN, case, _fwd(lambda x, g, b, e: 1.01 * (g * _x_hat(x, e)) + b), "out")
    assert not dg.detect_where_numerics_fail(ctx)


def test_restatements_yield_to_the_specific_cause():
    # x̂/σ is both "divided by the variance" and "times 1/σ": the specific words win.
    case = _bn_case()
    fn = _fwd(lambda x, g, b, e: g * (x - x.mean(0)) / (x.var(0) + e) + b)
    v = evaluate_all(BN, [case], [run_case(BN, fn, case)])[0]
    assert v.cause == "by_var" and "divided by the variance" in v.message


def test_shared_slips_of_tied_causes_are_named_alone():
    # Over the whole array ε is invisible: ddof=1 and the axis are named, ε's place is not.
    task = get("standardize")
    impl = (lambda x, eps=1e-5: (x - x.mean()) / x.std(ddof=1),)
    cases = task.cases(0)
    vs = evaluate_all(task, cases, [run_case(task, impl, c) for c in cases])
    assert all(v.cause == "axes:whole; ddof1" for v in vs)
    assert all("ε" not in v.message for v in vs)


# ---------------------------------------------------------------- what the student returns

def test_outputs_of_an_unexpected_type_are_named():
    for dtype, words in ((np.float16, "float16"), (np.float32, "float32"),
                         (np.complex128, "complex numbers"), (object, "Python objects")):
        fn = _fwd(lambda x, g, b, e, dtype=dtype: np.asarray(g * _x_hat(x, e) + b, dtype=dtype))
        case = _bn_case()
        v = evaluate_all(BN, [case], [run_case(BN, fn, case)])[0]
        assert not v.passed and v.mistake == "output_type" and words in v.message


def test_list_outputs_are_compared_per_device():
    task = get("sync_batchnorm_forward")
    ref = task.reference[0]

    def moved_row(shards, gamma, beta, bn_param):
        outs, cache = ref(shards, gamma, beta, bn_param)
        outs = list(outs)
        outs[0], outs[1] = np.vstack([outs[0], outs[1][:1]]), outs[1][1:]
        return outs, cache
    for case in task.cases(0):
        v = evaluate_all(task, [case], [run_case(task, (moved_row,), case)])[0]
        assert not v.passed and "split at the wrong places" in v.message
        assert v.cause == "structure"


def test_a_backward_stub_is_reported_under_its_own_name(capsys):
    def stub(*args, **kwargs):
        raise NotImplementedError("rmsnorm_forward: not implemented yet")  # the stub's text
    assert not check("rmsnorm_forward", rmsnorm_forward, stub)
    out = capsys.readouterr().out
    assert "… rmsnorm_backward(): not implemented yet" in out
    assert "rmsnorm_forward()" not in out.split("not implemented")[0]
    # the student's own functions (here: ones calling the course's) pass; the course's own
    # functions in their place are never praised (tests/test_tasks.py)
    assert check("rmsnorm_forward", lambda *a: rmsnorm_forward(*a),
                 lambda *a: rmsnorm_backward(*a))


def test_test_mode_on_a_fresh_layer_explains_the_missing_buffers():
    task = get("batchnorm_forward", "04_running_stats")

    def strict(x, gamma, beta, bn_param):
        if bn_param["mode"] == "test":
            rm, rv = bn_param["running_mean"], bn_param["running_var"]
            return gamma * (x - rm) / np.sqrt(rv + bn_param.get("eps", 1e-5)) + beta, {}
        return batchnorm_forward(x, gamma, beta, bn_param)
    case = next(c for c in task.cases(0) if "fresh" in c.label)
    v = evaluate_all(task, [case], [run_case(task, (strict,), case)])[0]
    assert v.mistake == "exception" and "fresh layer" in v.message
    assert "bn_param.get('running_mean', np.zeros(D))" in v.message


def test_a_toy_task_without_views_still_says_where_the_error_is():
    def run(fns, inputs):
        return {"out": fns[0](inputs["x"])}

    def double(x):
        return x * 2
    toy = Task(notebook="00_toy", points=1, checks="doubling", reference=(double,),
               make_cases=lambda rng: [Case("a", {"x": np.arange(4.0)})], run=run,
               mistakes=(), symbols=None)
    case = toy.cases()[0]
    v = evaluate_all(toy, [case], [run_case(toy, (lambda x: x * 2 + np.eye(4)[1],), case)])[0]
    assert v.cause is None and "at index (1,)" in v.message
