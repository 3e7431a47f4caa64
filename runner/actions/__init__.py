"""Actions: the registry of names and options (`registry`), and each action's behaviour.

Behaviour modules (what an action reads, its diff, its Graph requests, its verification) are
added beside the registry and look their `ActionSpec` up with `registry.get(name)`.
"""

from __future__ import annotations

from runner.actions.registry import ACTIONS, ALIASES, METHOD_KINDS, ActionSpec

__all__ = ["ACTIONS", "ALIASES", "METHOD_KINDS", "ActionSpec"]
