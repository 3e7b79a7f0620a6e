"""Course-scale grading: ``python -m autograder batch SUBMISSIONS --out DIR``.

One module per concept:
- ``discovery``: the submissions of a Gradescope export or a folder, and their submitters;
- ``keys``: content hashes deciding whether a stored grade is still current;
- ``store``: the batch folder's layout and its atomic writes;
- ``worker``: one submission graded by its own ``grade`` process;
- ``executors``: where the workers run (local threads, a Slurm job array);
- ``cohort``: the batch read back as rows; ``scores``: scores.csv; ``report``: report.md and
  report.html; ``regrade_diff``: what changed since a previous batch;
- ``runner``: the run itself; ``command``: its command line.
"""
from autograder.batch.runner import BatchSummary, run_batch

__all__ = ["BatchSummary", "run_batch"]
