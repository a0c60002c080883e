"""Shared test helpers: what needs an optional extra or data is skipped with the reason, and
no test downloads anything."""

from __future__ import annotations

import pytest

from incentive_envs.routing.tntp import aequilibrae_sioux_falls_zip, tntp_network


def sioux_falls_files_cached() -> bool:
    """Whether the Sioux Falls TNTP files are in the cache (checked, without a download)."""
    try:
        tntp_network("SiouxFalls", download=False)
    except (ValueError, FileNotFoundError):  # missing, or not the checked files
        return False
    return True


def sioux_falls_offline() -> bool:
    """Whether Sioux Falls can be read without a download: from the ``aequilibrae`` wheel (the
    ``[traffic]`` extra) or from TNTP files already in the cache."""
    return aequilibrae_sioux_falls_zip() is not None or sioux_falls_files_cached()


requires_sioux_falls = pytest.mark.skipif(
    not sioux_falls_offline(),
    reason="Sioux Falls offline needs the traffic extra (pip install -e '.[traffic]') or its TNTP files "
    "in INCENTIVE_ENVS_CACHE; tests never download",
)
"""Mark for tests that read Sioux Falls."""


requires_sioux_falls_files = pytest.mark.skipif(
    not sioux_falls_files_cached(),
    reason="needs the Sioux Falls TNTP files in INCENTIVE_ENVS_CACHE; tests never download",
)
"""Mark for tests that read Sioux Falls from the TNTP files themselves."""
