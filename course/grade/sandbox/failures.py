"""Why a student step failed: one vocabulary for the runner, the grading and the statuses."""

from dataclasses import dataclass
from enum import Enum


class Kind(Enum):
    """A failure kind; the value is the grader's own wording in statuses."""

    TIMEOUT = "timeout"
    NOTEBOOK_TIMEOUT = "timeout (whole notebook)"
    SUBMISSION_TIMEOUT = "timeout (whole submission)"
    MEMORY = "memory limit"
    OUTPUT = "output limit"
    EXIT = "sys.exit"
    CRASH = "kernel died"
    PROTOCOL = "kernel died (malformed result)"  # a frame out of order, oversized or forged
    CANCELLED = "cancelled (the grader was stopped)"  # SIGINT/SIGTERM: no row is written


@dataclass(frozen=True)
class Failure:
    """A failure of one question: its kind, a grader-made detail, the answer cell it hit."""

    kind: Kind
    detail: str = ""  # "exit code 3", "SIGKILL": made by the grader, never by the student
    cell: str | None = None  # label of the answer cell that was running, if any

    @property
    def text(self):
        return f"{self.kind.value} ({self.detail})" if self.detail else self.kind.value

    def status(self, functions):
        """'timeout in batchnorm_forward' or 'memory limit in answer cell bn_forward_train'."""
        if self.cell is not None:
            return f"{self.text} in answer cell {self.cell}"
        return f"{self.text} in {', '.join(functions)}"


def from_error(text):
    """The Kind of an exception text ('MemoryError: ...') raised in student code, or None."""
    name = text.split(":")[0].strip()
    if name == "MemoryError":
        return Kind.MEMORY
    if name in ("SystemExit", "KeyboardInterrupt"):
        return Kind.EXIT
    return None
