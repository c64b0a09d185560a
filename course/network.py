"""The train/eval switch shared by every network in the course."""


class Network:
    """Mixin: train()/eval() set `training` on a network and on its mode-dependent layers."""

    training = True

    def mode_layers(self):
        """The layers that behave differently in training and evaluation (None entries allowed)."""
        raise NotImplementedError

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
