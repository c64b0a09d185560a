"""Routes to free points: answer cells that compute a graded answer with something other than the
student's own code (another course function under another name or on a reshaped view, special
arguments, a numerical gradient, a framework, a pasted reference), or answers of the wrong kind.

Each route is checked twice (tests/grade/test_allowlist.py): against the real package, where it
must earn full marks (so it is a real route, not a typo), and through the grader, where it must
earn 0. ROUTES: (notebook, question, name, answer source).
"""

import inspect
import textwrap

NB01, NB02, NB03, NB04 = "01_why_normalize", "02_forward_pass", "03_backward_pass", \
    "04_running_stats"
NB05, NB06, NB07 = "05_cnn_and_layernorm", "06_in_practice", "07_why_bn_helps"


def _src(text):
    return textwrap.dedent(text).strip() + "\n"


TORCH_BN_BACKWARD = _src("""
    import torch
    def {name}(dout, cache):
        x = torch.tensor(cache["x"], requires_grad=True)
        g = torch.tensor(cache["gamma"], requires_grad=True)
        b = torch.tensor(cache["beta"], requires_grad=True)
        out = torch.nn.functional.batch_norm(x, None, None, g, b, training=True, eps=cache["eps"])
        out.backward(torch.tensor(dout))
        return x.grad.numpy(), g.grad.numpy(), b.grad.numpy()
""")

NUMERICAL_BN_BACKWARD = _src("""
    def {name}(dout, cache):
        x, g, b, eps = cache["x"].copy(), cache["gamma"].copy(), cache["beta"].copy(), cache["eps"]
        f = lambda x_, g_, b_: batchnorm_forward(x_, g_, b_, {{"mode": "train", "eps": eps}})[0]
        dx = numerical_gradient_array(lambda v: f(v, g, b), x, dout, h=1e-7)
        dg = numerical_gradient_array(lambda v: f(x, v, b), g, dout)
        db = numerical_gradient_array(lambda v: f(x, g, v), b, dout)
        return dx, dg, db
""")

SPATIAL_VIEW_BACKWARD = _src("""
    from course.norms import spatial_batchnorm_backward
    def {name}(dout, cache):
        N, D = dout.shape
        dx, dg, db = spatial_batchnorm_backward(dout[:, :, None, None], (cache, (N, D, 1, 1)))
        return dx[:, :, 0, 0], dg, db
""")

SYNC_ONE_SHARD_BACKWARD = _src("""
    from course.sync_bn import sync_batchnorm_backward
    def {name}(dout, cache):
        c = {{"x_hat": [cache["x_hat"]], "inv_std": cache["inv_std"], "gamma": cache["gamma"],
             "count": dout.shape[0]}}
        dxs, dg, db = sync_batchnorm_backward([dout], c)
        return dxs[0], dg, db
""")

ABLATION_CENTRE_THEN_SCALE = _src("""
    from course.ablations import center_forward, scale_forward
    def batchnorm_forward(x, gamma, beta, bn_param):
        D = x.shape[1]
        centred, _ = center_forward(x, np.ones(D), np.zeros(D), bn_param)
        return scale_forward(centred, gamma, beta, bn_param)
""")

ROUTES = [
    # ---- 01: saturation_fraction, standardize
    (NB01, "saturation_fraction", "course_module_from_setup", _src("""
        def saturation_fraction(z, threshold=4.0):
            return course.saturation.saturation_fraction(z, threshold)
    """)),
    (NB01, "saturation_fraction", "torch", _src("""
        import torch
        def saturation_fraction(z, threshold=4.0):
            return float((torch.as_tensor(z).abs() > threshold).double().mean())
    """)),
    (NB01, "standardize", "bn_gamma1_beta0", _src("""
        from course.batchnorm import batchnorm_forward
        def standardize(x, eps=1e-5):
            D = x.shape[1]
            return batchnorm_forward(x, np.ones(D), np.zeros(D), {"mode": "train", "eps": eps})[0]
    """)),
    (NB01, "standardize", "layernorm_of_transpose", _src("""
        from course.norms import layernorm_forward
        def standardize(x, eps=1e-5):
            N = x.shape[0]
            return layernorm_forward(x.T, np.ones(N), np.zeros(N), {"eps": eps})[0].T
    """)),
    (NB01, "standardize", "weight_standardize_of_transpose", _src("""
        from course.weight_standardization import weight_standardize
        def standardize(x, eps=1e-5):
            return weight_standardize(x.T, eps).T
    """)),
    (NB01, "standardize", "torch_batch_norm", _src("""
        import torch
        def standardize(x, eps=1e-5):
            return torch.nn.functional.batch_norm(torch.tensor(x), None, None, training=True,
                                                  eps=eps).numpy()
    """)),
    (NB01, "standardize", "reference_found_on_disk", _src("""
        import os, sys
        def standardize(x, eps=1e-5):
            seen = 0
            for top in sys.path:  # the folders Python looks in, and one level up
                for start in {top, os.path.dirname(top)}:
                    for d, dirs, files in os.walk(start):
                        dirs[:] = [n for n in dirs if not n.startswith(".")][:50]
                        seen += 1
                        if seen > 3000:
                            break
                        if "saturation.py" in files:
                            src = open(os.path.join(d, "saturation.py")).read()
                            if "return (x - mu) / np.sqrt(var + eps)" in src:
                                ns = {}
                                exec(src, ns)
                                return ns["standardize"](x, eps)
            raise RuntimeError("no reference on disk")
    """)),
    (NB01, "standardize", "complex_output", _src("""
        def standardize(x, eps=1e-5):
            right = (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + eps)
            return right + 1j * np.random.default_rng(0).normal(size=x.shape)
    """)),
    (NB01, "standardize", "object_strings", _src("""
        def standardize(x, eps=1e-5):
            right = (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + eps)
            return np.array([[repr(float(v)) for v in row] for row in right], dtype=object)
    """)),
    # ---- 02: batchnorm_forward
    (NB02, "batchnorm_forward", "reference_from_setup", _src("""
        def batchnorm_forward(x, gamma, beta, bn_param):
            return reference_forward(x, gamma, beta, bn_param)
    """)),
    (NB02, "batchnorm_forward", "sync_bn_one_shard", _src("""
        from course.sync_bn import sync_batchnorm_forward
        def batchnorm_forward(x, gamma, beta, bn_param):
            outs, cache = sync_batchnorm_forward([x], gamma, beta, bn_param)
            return outs[0], cache
    """)),
    (NB02, "batchnorm_forward", "batch_renorm_r1_d0", _src("""
        from course.batch_renorm import batch_renorm_forward
        def batchnorm_forward(x, gamma, beta, bn_param):
            p = dict(bn_param, r_max=1.0, d_max=0.0)
            out, cache = batch_renorm_forward(x, gamma, beta, p)
            bn_param.update(running_mean=p["running_mean"], running_var=p["running_var"])
            return out, cache
    """)),
    (NB02, "batchnorm_forward", "importlib_exec", _src("""
        import importlib
        _m = importlib.import_module("course.batch" + "norm")
        exec("def batchnorm_forward(x, g, b, p):\\n    return _m.batchnorm_forward(x, g, b, p)")
    """)),
    (NB02, "batchnorm_forward", "dunder_import", _src("""
        def batchnorm_forward(x, gamma, beta, bn_param):
            return __import__("course").batchnorm.batchnorm_forward(x, gamma, beta, bn_param)
    """)),
    (NB02, "batchnorm_forward", "torch_batch_norm", _src("""
        import torch
        def batchnorm_forward(x, gamma, beta, bn_param):
            out = torch.nn.functional.batch_norm(
                torch.tensor(x), None, None, torch.tensor(gamma), torch.tensor(beta),
                training=True, eps=bn_param.get("eps", 1e-5))
            return out.numpy(), None
    """)),
    (NB02, "batchnorm_forward", "ablation_centre_then_scale", ABLATION_CENTRE_THEN_SCALE),
    # ---- 03: batchnorm_backward, batchnorm_backward_alt
    (NB03, "batchnorm_backward", "staged_from_setup", _src("""
        def batchnorm_backward(dout, cache):
            grads, _ = batchnorm_backward_staged(dout, cache)
            return grads["x"], grads["gamma"], grads["beta"]
    """)),
    (NB03, "batchnorm_backward_alt", "reference_from_setup", _src("""
        def batchnorm_backward_alt(dout, cache):
            return reference_backward_alt(dout, cache)
    """)),
    (NB03, "batchnorm_backward", "numerical_gradient",
     NUMERICAL_BN_BACKWARD.format(name="batchnorm_backward")),
    (NB03, "batchnorm_backward_alt", "spatial_view",
     SPATIAL_VIEW_BACKWARD.format(name="batchnorm_backward_alt")),
    (NB03, "batchnorm_backward", "sync_bn_one_shard",
     SYNC_ONE_SHARD_BACKWARD.format(name="batchnorm_backward")),
    (NB03, "batchnorm_backward_alt", "torch_autograd",
     TORCH_BN_BACKWARD.format(name="batchnorm_backward_alt")),
    # ---- 04: batchnorm_forward (train and test), pytorch_running_update
    (NB04, "batchnorm_forward", "reference_from_setup", _src("""
        def batchnorm_forward(x, gamma, beta, bn_param):
            return reference_forward(x, gamma, beta, bn_param)
    """)),
    (NB04, "batchnorm_forward", "spatial_view_from_setup", _src("""
        from course.norms import spatial_batchnorm_forward
        def batchnorm_forward(x, gamma, beta, bn_param):
            out, cache = spatial_batchnorm_forward(x[:, :, None, None], gamma, beta, bn_param)
            return out[:, :, 0, 0], cache
    """)),
    (NB04, "batchnorm_forward", "ablation_centre_then_scale", ABLATION_CENTRE_THEN_SCALE),
    (NB04, "pytorch_running_update", "module_from_setup", _src("""
        def pytorch_running_update(running_mean, running_var, x, momentum):
            return rs.pytorch_running_update(running_mean, running_var, x, momentum)
    """)),
    (NB04, "pytorch_running_update", "torch_batchnorm1d", _src("""
        import torch
        def pytorch_running_update(running_mean, running_var, x, momentum):
            bn = torch.nn.BatchNorm1d(x.shape[1], momentum=momentum, dtype=torch.float64)
            with torch.no_grad():
                bn.running_mean[:] = torch.tensor(running_mean)
                bn.running_var[:] = torch.tensor(running_var)
            bn.train()
            bn(torch.tensor(x))
            return bn.running_mean.detach().numpy(), bn.running_var.detach().numpy()
    """)),
    # ---- 05: spatial batch norm (may use batch norm), layer norm (may not)
    (NB05, "spatial_batchnorm_forward", "reference_import", _src("""
        from course.norms import spatial_batchnorm_forward as _f, spatial_batchnorm_backward as _b
        def spatial_batchnorm_forward(x, gamma, beta, bn_param):
            return _f(x, gamma, beta, bn_param)
        def spatial_batchnorm_backward(dout, cache):
            return _b(dout, cache)
    """)),
    (NB05, "layernorm_forward", "groupnorm_g1_from_setup", _src("""
        def layernorm_forward(x, gamma, beta, ln_param):
            out, cache = groupnorm_forward(x[:, :, None, None], gamma, beta, 1, ln_param)
            return out[:, :, 0, 0], cache
        def layernorm_backward(dout, cache):
            dx, dgamma, dbeta = groupnorm_backward(dout[:, :, None, None], cache)
            return dx[:, :, 0, 0], dgamma, dbeta
    """)),
    (NB05, "layernorm_forward", "batchnorm_of_transpose", _src("""
        def layernorm_forward(x, gamma, beta, ln_param):
            N = x.shape[0]
            x_hat, c = batchnorm_forward(x.T, np.ones(N), np.zeros(N),
                                         {"mode": "train", "eps": ln_param.get("eps", 1e-5)})
            return gamma * x_hat.T + beta, (c, x_hat.T, gamma)
        def layernorm_backward(dout, cache):
            c, x_hat, gamma = cache
            dx = batchnorm_backward_alt((dout * gamma).T, c)[0].T
            return dx, (dout * x_hat).sum(axis=0), dout.sum(axis=0)
    """)),
    (NB05, "layernorm_forward", "torch_autograd", _src("""
        import torch
        def layernorm_forward(x, gamma, beta, ln_param):
            t = [torch.tensor(a, requires_grad=True) for a in (x, gamma, beta)]
            out = torch.nn.functional.layer_norm(t[0], (x.shape[1],), t[1], t[2],
                                                 eps=ln_param.get("eps", 1e-5))
            return out.detach().numpy(), (out, t)
        def layernorm_backward(dout, cache):
            out, t = cache
            out.backward(torch.tensor(dout))
            return tuple(a.grad.numpy() for a in t)
    """)),
    # ---- 06: fold_batchnorm, sync_batchnorm_forward, sync_batchnorm_backward
    (NB06, "fold_batchnorm", "conv_fold_of_view_from_setup", _src("""
        def fold_batchnorm(w, b, gamma, beta, running_mean, running_var, eps=1e-5):
            wf, bf = fold_batchnorm_conv(w.T[:, :, None, None], b, gamma, beta, running_mean,
                                         running_var, eps)
            return wf[:, :, 0, 0].T, bf
    """)),
    (NB06, "fold_batchnorm", "scale_shift_helper", _src("""
        from course.folding import bn_scale_shift
        def fold_batchnorm(w, b, gamma, beta, running_mean, running_var, eps=1e-5):
            scale, shift = bn_scale_shift(gamma, beta, running_mean, running_var, eps)
            return w * scale, b * scale + shift
    """)),
    (NB06, "sync_batchnorm_forward", "batchnorm_of_concatenation_from_setup", _src("""
        def sync_batchnorm_forward(shards, gamma, beta, bn_param):
            out, cache = batchnorm_forward(np.concatenate(shards), gamma, beta, bn_param)
            return np.split(out, np.cumsum([len(s) for s in shards])[:-1]), cache
    """)),
    (NB06, "sync_batchnorm_backward", "batchnorm_of_concatenation_from_setup", _src("""
        from course.batchnorm import batchnorm_backward_alt
        def sync_batchnorm_backward(douts, cache):
            c = {"x_hat": np.concatenate(cache["x_hat"]), "gamma": cache["gamma"],
                 "inv_std": cache["inv_std"]}
            dx, dgamma, dbeta = batchnorm_backward_alt(np.concatenate(douts), c)
            return np.split(dx, np.cumsum([len(d) for d in douts])[:-1]), dgamma, dbeta
    """)),
    # ---- 07: bn_net_loss (may use the layers), rmsnorm (may not), batch_renorm_forward
    (NB07, "bn_net_loss", "numerical_gradient_from_setup_net", _src("""
        from course.gradcheck import numerical_gradient
        def bn_net_loss(X, params, bn_params, y=None, reg=0.0):
            L = len(bn_params)
            def scores(p, keep):
                h = X
                for i in range(1, L + 1):
                    bp = bn_params[i - 1] if keep else dict(bn_params[i - 1])
                    bp["mode"] = "test" if y is None else "train"
                    z, _ = affine_forward(h, p[f"W{i}"], p[f"b{i}"])
                    z, _ = batchnorm_forward(z, p[f"gamma{i}"], p[f"beta{i}"], bp)
                    h, _ = relu_forward(z)
                return affine_forward(h, p[f"W{L + 1}"], p[f"b{L + 1}"])[0]
            if y is None:
                return scores(params, True)
            def loss(p):
                return softmax_loss(scores(p, False), y)[0] + 0.5 * reg * sum(
                    np.sum(p[f"W{i}"] ** 2) for i in range(1, L + 2))
            grads = {k: numerical_gradient(lambda v, k=k: loss({**params, k: v}), v.copy())
                     for k, v in params.items()}
            value = loss(params)
            scores(params, True)
            return value, grads
    """)),
    (NB07, "bn_net_loss", "course_mlp", _src("""
        from course.mlp import MLP
        def bn_net_loss(X, params, bn_params, y=None, reg=0.0):
            L = len(bn_params)
            net = MLP([params["W1"].shape[0]] + [params[f"W{i}"].shape[1] for i in range(1, L + 2)],
                      batchnorm=True)
            net.W = [params[f"W{i}"] for i in range(1, L + 2)]
            net.b = [params[f"b{i}"] for i in range(1, L + 2)]
            for bn, p, i in zip(net.bn, bn_params, range(1, L + 1)):
                bn.gamma, bn.beta = params[f"gamma{i}"], params[f"beta{i}"]
                bn.running_mean, bn.running_var = p["running_mean"], p["running_var"]
            net.train(y is not None)
            scores = net.forward(X)
            for bn, p in zip(net.bn, bn_params):
                p["running_mean"], p["running_var"] = bn.running_mean, bn.running_var
            if y is None:
                return scores
            loss, dscores = softmax_loss(scores, y)
            net.backward(dscores)
            grads = {}
            for i in range(1, L + 2):
                grads[f"W{i}"] = net.grads[f"W{i - 1}"] + reg * params[f"W{i}"]
                grads[f"b{i}"] = net.grads[f"b{i - 1}"]
                loss += 0.5 * reg * np.sum(params[f"W{i}"] ** 2)
            for bn, i in zip(net.bn, range(1, L + 1)):
                grads[f"gamma{i}"], grads[f"beta{i}"] = bn.dgamma, bn.dbeta
            return loss, grads
    """)),
    (NB07, "bn_net_loss", "mlp_module", _src("""
        import course.bn_net as _net
        def bn_net_loss(X, params, bn_params, y=None, reg=0.0):
            return _net.bn_net_loss(X, params, bn_params, y, reg)
    """)),
    (NB07, "rmsnorm_forward", "layernorm_of_x_and_minus_x_from_setup", _src("""
        from course.norms import layernorm_backward, layernorm_forward
        def rmsnorm_forward(x, gamma, rms_param):
            D = x.shape[1]
            out, c = layernorm_forward(np.hstack([x, -x]), np.ones(2 * D), np.zeros(2 * D),
                                       {"eps": rms_param.get("eps", 1e-5)})
            return gamma * out[:, :D], (c, out[:, :D], gamma)
        def rmsnorm_backward(dout, cache):
            c, x_hat, gamma = cache
            d = layernorm_backward(np.hstack([dout * gamma, np.zeros_like(dout)]), c)[0]
            D = dout.shape[1]
            return d[:, :D] - d[:, D:], (dout * x_hat).sum(axis=0)
    """)),
    (NB07, "rmsnorm_forward", "batchnorm_of_x_and_minus_x_from_setup", _src("""
        from course.batchnorm import batchnorm_backward_alt
        def rmsnorm_forward(x, gamma, rms_param):
            N, D = x.shape
            both = np.hstack([x, -x]).T  # (2D, N): one column per example
            x_hat, c = batchnorm_forward(both, np.ones(N), np.zeros(N),
                                         {"mode": "train", "eps": rms_param.get("eps", 1e-5)})
            return gamma * x_hat.T[:, :D], (c, x_hat.T[:, :D], gamma)
        def rmsnorm_backward(dout, cache):
            c, x_hat, gamma = cache
            D = dout.shape[1]
            d = batchnorm_backward_alt(np.hstack([dout * gamma, np.zeros_like(dout)]).T, c)[0].T
            return d[:, :D] - d[:, D:], (dout * x_hat).sum(axis=0)
    """)),
    (NB07, "batch_renorm_forward", "reference_import", _src("""
        from course.batch_renorm import batch_renorm_forward as _brn
        def batch_renorm_forward(x, gamma, beta, bn_param):
            return _brn(x, gamma, beta, bn_param)
    """)),
]


def pasted(task):
    """An answer that is the course's reference, pasted with everything its module defines above
    it (so that it runs): the copy the review column must report."""
    modules = {inspect.getmodule(f) for f in task.reference}
    return "\n\n".join(textwrap.dedent(inspect.getsource(m)) for m in sorted(
        modules, key=lambda m: m.__name__))
