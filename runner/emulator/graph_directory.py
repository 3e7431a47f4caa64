"""Graph routes (in progress)."""

from __future__ import annotations
