"""The sandbox stage: run untrusted student code out of process, one fresh fork per call.

``Sandbox`` (client.py) is the trusted side; ``zygote.py`` is the fork server it starts;
``child.py`` is what each forked child does; ``limits.py`` holds rlimits, the privilege drop and
process killing; ``slots.py`` the uid each concurrent Sandbox runs as; ``secrets.py`` what
student code must not see and ``mounts.py`` the private mount namespace that hides it;
``wire.py`` the data format across the boundary; ``reuse.py`` zygotes kept for the next Sandbox
of a process, ``template.py`` zygotes forked for other processes (a batch's grades). See
docs/DESIGN.md.
"""
from autograder.sandbox.client import ProbeResult, Sandbox, sweep_sandbox_user
from autograder.sandbox.limits import Limits

__all__ = ["Limits", "ProbeResult", "Sandbox", "sweep_sandbox_user"]
