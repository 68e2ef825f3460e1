"""Shared by the benchmarks: the header line every benchmark prints first."""
from __future__ import annotations

import os
import sys

from engine.core.build import core_build_line


def machine_line() -> str:
    """Cores, Python, and which core runs (compiled by mypyc, or pure Python)."""
    return f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; {core_build_line()}"
