"""``given``, ``settings`` and ``st`` from hypothesis when it is installed (the ``[dev]``
extra); otherwise stand-ins under which every property test is skipped with the reason, and
the rest of its module still runs."""

from __future__ import annotations

import pytest

try:
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - exercised only without the extra
    REASON = "hypothesis is not installed: pip install -e '.[dev]'"

    class _Strategies:
        """Accepts any strategy expression (``st.floats(0, 1)``, ``@st.composite``) and builds nothing."""

        def __getattr__(self, name):
            return self

        def __call__(self, *args, **kwargs):
            return self

    st = _Strategies()

    def given(*args, **kwargs):
        return pytest.mark.skip(reason=REASON)

    def settings(*args, **kwargs):
        return lambda test: test


__all__ = ["given", "settings", "st"]
