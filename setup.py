"""Maps the design card's top-level folders onto the `twinplane` package.

`hdl/` is imported as `twinplane.hdl`, `host/` as `twinplane.host`, `sim/` as
`twinplane.sim` and `boards/` as `twinplane.boards`; `twinplane/` holds what
both sides share (wire protocol, reference models, command line).
"""

from setuptools import find_packages, setup

ROOTS = {
    "twinplane": "twinplane",
    "twinplane.hdl": "hdl",
    "twinplane.host": "host",
    "twinplane.sim": "sim",
    "twinplane.boards": "boards",
}

packages = []
for name, folder in ROOTS.items():
    packages.append(name)
    packages += [f"{name}.{sub}" for sub in find_packages(folder)]

setup(packages=packages, package_dir=ROOTS, package_data={"twinplane.sim": ["**/*.v", "**/*.cc"]})
