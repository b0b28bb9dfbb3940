"""Values for the map-file tests: exactly representable levels, unit vectors, and a folder's listing."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

RNG = np.random.default_rng(3)


def _levels(shape: tuple[int, ...], bits: int) -> np.ndarray:
    """Values exactly representable at `bits`, so lossless formats must give them back bit for bit."""
    top = (1 << bits) - 1
    return (RNG.integers(0, top + 1, shape).astype(np.float32) / top).astype(np.float32)


def _unit_vectors(h: int, w: int) -> np.ndarray:
    v = RNG.normal(size=(h, w, 3))
    v[..., 2] = np.abs(v[..., 2]) + 0.2
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


def _dir_listing(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))  # includes hidden temporary files


@pytest.fixture(scope="session")
def levels():
    """levels(shape, bits) -> float32 values exactly representable at `bits` (lossless formats keep them)."""
    return _levels


@pytest.fixture(scope="session")
def unit_vectors():
    """unit_vectors(h, w) -> h x w x 3 random unit vectors facing +Z."""
    return _unit_vectors


@pytest.fixture(scope="session")
def dir_listing():
    """dir_listing(folder) -> the sorted names in folder, hidden temporary files included."""
    return _dir_listing
