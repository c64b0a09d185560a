"""Claims: what an experiment's numbers support, printed by notebooks and asserted by tests.

An experiment module returns its measured evidence; a `claims(result)` function beside it turns that
evidence into `Claim`s. The notebook prints them with `show`, the tests assert them with
`assert_all_hold`, and the prose quotes the sentence: one threshold, in one place.
"""

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Claim:
    """One sentence the prose makes, whether the numbers bear it out, and the numbers themselves."""

    sentence: str  # as the prose quotes it, with its horizon ("after 22 steps")
    holds: bool
    numbers: dict = field(default_factory=dict)  # name -> value the sentence rests on
    condition: str = ""  # set-up under which it was measured (seeds, budget, data)

    def __post_init__(self):
        object.__setattr__(self, "holds", bool(self.holds))  # np.bool_ prints as "np.True_"

    def line(self):
        """'✓ sentence (a = 1.23, b = 4.56; condition)' for printing."""
        nums = ", ".join(f"{k} = {_fmt(v)}" for k, v in self.numbers.items())
        tail = "; ".join(s for s in (nums, self.condition) if s)
        return f"{'✓' if self.holds else '✗'} {self.sentence}" + (f" ({tail})" if tail else "")


def _fmt(value):
    if isinstance(value, (float, np.floating)):
        return f"{value:.3g}"
    return str(value)


def show(claims):
    """Print each claim on its own line, ✓ when the numbers bear it out and ✗ when they do not."""
    for claim in claims:
        print(claim.line())


def assert_all_hold(claims):
    """For tests: fail naming every claim whose numbers do not bear it out."""
    failed = [c.line() for c in claims if not c.holds]
    assert not failed, "claims the numbers do not support:\n" + "\n".join(failed)

