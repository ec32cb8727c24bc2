"""Tiny compatibility package: see amc_tfdv_compat/__init__.py for why it exists."""
import os

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithPth(build_py):
    """Also ships amc_tfdv_compat.pth at the top of site-packages, so the finder loads at start-up."""

    def run(self):
        super().run()
        here = os.path.dirname(os.path.abspath(__file__))
        self.copy_file(os.path.join(here, "amc_tfdv_compat.pth"),
                       os.path.join(self.build_lib, "amc_tfdv_compat.pth"))


setup(
    name="amc-tfdv-compat",
    version="1.0.0",
    description="Lets TFDV 1.16.1 import under tfx-bsl 1.21 (SQL slicing unsupported).",
    packages=["amc_tfdv_compat"],
    cmdclass={"build_py": BuildPyWithPth},
    python_requires=">=3.9",
)
