"""Each published model in a fresh Keras session: a worker builds many, one after another."""

from __future__ import annotations

import keras
import pytest


@pytest.fixture(autouse=True)
def _fresh_session():
    yield
    keras.backend.clear_session()
