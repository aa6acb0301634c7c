"""Fixtures shared by the test files: the published leaderboards' logs, and
JAX started on every core of the test process.

Each is unpacked once per test process from workloads_config/leaderboards/
into a temporary folder, so the scorer is checked against every published
leaderboard from the repository alone.
"""

import pathlib

import jax
import pytest

from localperf import leaderboards


@pytest.fixture(scope='session', autouse=True)
def jax_backend():
  """Starts JAX's backend before any test, so a command run in-process
  (`run_local.main`, ...) leaves the test process on all its cores instead
  of pinning it to one (`localperf.jobs.pin_this_process`)."""
  jax.devices()


def _unpack(version: str, tmp_path_factory) -> pathlib.Path:
  return leaderboards.unpack(leaderboards.archive_path(version),
                             tmp_path_factory.mktemp('leaderboards'))


@pytest.fixture(scope='session')
def leaderboard_v05(tmp_path_factory) -> pathlib.Path:
  """The published v0.5 leaderboard folder (EXPECTED_SCORES.md, logs)."""
  return _unpack('0.5', tmp_path_factory)


@pytest.fixture(scope='session')
def leaderboard_v06(tmp_path_factory) -> pathlib.Path:
  """The published v0.6 leaderboard folder (EXPECTED_SCORES.md, logs)."""
  return _unpack('0.6', tmp_path_factory)
