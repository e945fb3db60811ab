"""Suspicious-request detection: decoding, rules, and the detector compiled from config."""

from __future__ import annotations

from .detector import Detector, Finding
from .rules import CATEGORIES

__all__ = ["CATEGORIES", "Detector", "Finding"]
