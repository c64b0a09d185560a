"""The training loop and the accuracy function."""


import numpy as np

from course.dataset import load_digits
from course.mlp import MLP
from course.optim import SGD
from course.train import accuracy, train


def test_training_learns_digits_and_is_deterministic():
    d = load_digits(standardize=True)
    runs = []
    for _ in range(2):
        net = MLP([64, 32, 10], batchnorm=True, seed=0)
        hist = train(net, d.X_train, d.y_train, d.X_val, d.y_val, SGD(0.05, 0.9), epochs=3)
        runs.append(hist)
    assert runs[0].val_acc == runs[1].val_acc
    assert runs[0].val_acc[-1] > 0.9  # chance is 0.1
    assert runs[0].loss[-1] < runs[0].loss[0]
    assert accuracy(net, d.X_val, d.y_val) == runs[1].val_acc[-1]
    assert net.training  # accuracy() restores the mode it found


class _Recorder:
    """A stand-in network that records the batches it is asked about and predicts class 0."""

    def __init__(self):
        self.batches, self.training, self.frozen = [], True, False

    def mode_layers(self):
        return []

    def predicting(self, statistics="running"):
        return MLP((1, 2)).predicting(statistics)  # validates the choice like a real network

    def forward(self, X):
        self.batches.append(X[:, 0].astype(int).tolist())
        return np.tile([1.0, 0.0], (len(X), 1))  # (B, 2)


def test_batch_statistics_use_full_batches_filled_from_the_start_of_the_order():
    X, y = np.arange(7.0)[:, None], np.array([0, 1, 0, 1, 0, 1, 0])  # (7, 1), (7,)
    rec = _Recorder()
    acc = accuracy(rec, X, y, batch_size=3, statistics="batch", order=[6, 5, 4, 3, 2, 1, 0])
    assert rec.batches == [[6, 5, 4], [3, 2, 1], [0, 6, 5]]  # the last batch borrows 6 and 5
    assert acc == 4 / 7  # each example counted once: the borrowed ones are not counted twice
    rec = _Recorder()
    assert accuracy(rec, X, y, batch_size=3) == 4 / 7
    assert rec.batches == [[0, 1, 2], [3, 4, 5], [6]]  # test mode: a short last batch is fine


def test_accuracy_with_batch_statistics_on_a_trained_bn_net_depends_on_the_batch_size():
    d = load_digits(standardize=True)
    net = MLP([64, 32, 10], batchnorm=True, seed=0)
    train(net, d.X_train, d.y_train, d.X_val, d.y_val, SGD(0.05, 0.9), epochs=3)
    test_mode = accuracy(net, d.X_val, d.y_val)
    ones = accuracy(net, d.X_val, d.y_val, batch_size=1, statistics="batch")
    with net.predicting("batch"):
        constant = net.forward(d.X_val[:1])[0].argmax()  # a batch of one: the same answer always
    assert ones == np.mean(d.y_val == constant) < 0.2 < 0.9 < test_mode
