"""Expectation suites as code: one module per source (raw_checks, clean_checks) and common.py."""

from __future__ import annotations

import importlib
from types import ModuleType


def suites_for(source: str) -> ModuleType:
    return importlib.import_module(f"expectations.{source}")
