"""Makes `tfx_bsl.arrow.sql_util` importable so TFDV 1.16.1 loads under tfx-bsl 1.21.

Why: PyPI serves no TFDV 1.21 (the version tfx 1.21 pins), so amc_tf installs TFDV 1.16.1. That
release imports `tfx_bsl.arrow.sql_util` at module load, and tfx-bsl >= 1.17 removed that module
(its ZetaSQL-based slicing). Without it StatisticsGen / SchemaGen / ExampleValidator cannot even be
imported. This package registers a fallback importer (from a .pth file, at interpreter start) that
serves `sql_util` only when tfx-bsl itself has none. SQL slicing stays unsupported: using it raises
NotImplementedError with a clear message. Feature-based slicing is unaffected.
"""

import importlib.abc
import importlib.util
import sys

TARGET = "tfx_bsl.arrow.sql_util"


class _SqlUtilFallbackFinder(importlib.abc.MetaPathFinder):
    """Last-resort finder: answers only for TARGET, after every real finder said no."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != TARGET:
            return None
        return importlib.util.spec_from_loader(fullname, _SqlUtilLoader(), origin=__file__)


class _SqlUtilLoader(importlib.abc.Loader):

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        from amc_tfdv_compat import sql_util
        module.__dict__.update(
            {k: v for k, v in vars(sql_util).items() if not k.startswith("__")})
        module.__doc__ = sql_util.__doc__


def install():
    """Appends the finder once (idempotent), so a real `sql_util` always wins."""
    if not any(isinstance(f, _SqlUtilFallbackFinder) for f in sys.meta_path):
        sys.meta_path.append(_SqlUtilFallbackFinder())
