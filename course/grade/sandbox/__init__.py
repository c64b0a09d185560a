"""The grader's trust boundary: everything that touches a student process lives here.

Modules: bwrap (the sandbox's command line and a probe), copy (the grading copy of `course`
without the graded notebook's references), launch (starting and ending sandboxed processes),
harness (the code inside them), wire (the bounded frames between them and the grader), runner
(one notebook's run as a protocol state machine, restarts after failures), failures (the one
vocabulary of failure kinds).
"""
