"""Scheduling, pacing, retry classification, canary, halting, resume and reconciliation."""

from __future__ import annotations
