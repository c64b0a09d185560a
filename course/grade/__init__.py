"""The instructor's autograder: `python -m course.grade SUBMISSION... --out DIR`.

Modules: questions (what can be graded), submission (what a student handed in), sandbox
(the trust boundary: spawning, the sandbox, the in-sandbox harness, the wire, one notebook's
run), grading (points, in the grader's own process), report (CSV, feedback, tables), text
(student text made inert for terminal, CSV and Markdown), merge (joining --shard outputs), cli.
"""
