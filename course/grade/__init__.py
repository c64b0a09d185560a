"""The instructor's autograder: `python -m course.grade SUBMISSION... --out DIR`.

Modules: questions (what can be graded), submission (what a student handed in), runner (one
notebook's run, restarts after failures), launch (starting and killing student processes),
harness (the code inside them), landlock (write confinement), wire (the private result
channel), grading (points, in the grader's own process), report (CSV, feedback, tables), text
(student text made inert for terminal, CSV and Markdown), merge (joining --shard outputs), cli.
"""
