"""The train/eval switch shared by every network in the course, and predicting in either mode."""

from contextlib import contextmanager

STATISTICS = ("running", "batch")


class Network:
    """Mixin: train()/eval() set `training` on a network and on its mode-dependent layers."""

    training = True

    def mode_layers(self):
        """The layers that behave differently in training and evaluation (None entries allowed):
        by default the list `self.bn`, one entry per layer, None where a layer has no BN."""
        return self.bn

    def train(self, mode=True):
        """Training mode (BN uses batch statistics), or evaluation mode with mode=False."""
        self.training = mode
        for layer in self.mode_layers():
            if layer is not None:
                layer.training = mode
        return self

    def eval(self):
        """Evaluation mode: BN uses its running statistics."""
        return self.train(False)

    def layer_params(self, W, b, norm, train_bias, names):
        """(name, value, grad) triples of one weight layer: W, then b unless a norm right after
        cancels the bias (its mean subtraction does; beta does the bias's job), then the norm's.
        names: the weight's, the bias's and the norm's prefix, as in ("W0", "b0", "bn0")."""
        w_name, b_name, norm_name = names
        out = [(w_name, W, self.grads.get(w_name))]
        if train_bias:
            out.append((b_name, b, self.grads.get(b_name)))
        if norm is not None:
            out += [(f"{norm_name}.{n}", v, g) for n, v, g in norm.params()]
        return out

    @contextmanager
    def predicting(self, statistics="running"):
        """Predict inside the block, normalising with the running statistics (test mode) or with
        each batch's own statistics ("batch", train-mode arithmetic); buffers stay untouched."""
        if statistics not in STATISTICS:
            raise ValueError(f"statistics must be one of {STATISTICS}, got {statistics!r}")
        was_training = self.training
        layers = [layer for layer in self.mode_layers() if layer is not None]
        self.eval()  # everything else (dropout) behaves as at test time
        for layer in layers:
            # Batch statistics: the layer computes as in training, but its buffers are frozen.
            layer.training = layer.frozen = statistics == "batch"
        try:
            yield self
        finally:
            for layer in layers:
                layer.frozen = False
            self.train(was_training)
