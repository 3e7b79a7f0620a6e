"""The training stage's trusted side, one concept a module.

- ``budget``: how much each pipeline trains, per device type, and the pipelines' constants;
- ``setting``: what a run is measured on (data, checkpoint, device, budget) and its fingerprint;
- ``memory``: the memory the stage needs (the gate that refuses a machine too small) and
  handing the heap's free pages back while a child trains;
- ``judging``: pure NumPy verdict helpers (sparsity, the global-prune pattern, quantization levels);
- ``measure``: the measurements that need torch (starting models, accuracy), run in a
  short-lived trusted process, never in the grading process;
- ``pipelines``: the runner, one method per check: inputs to a sandboxed probe, its weights
  measured by ``measure``.

The grading process imports none of torch through these modules: while a child trains, it
holds NumPy and the grade's data only.
"""
