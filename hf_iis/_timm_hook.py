"""Interpreter start-up hook that makes a plain `import timm` work in an environment without torchvision.

`python -m hf_iis.install_timm_hook` writes a one-line `.pth` file into site-packages that runs this file at start-up.
It only adds a finder to `sys.meta_path`; nothing is imported until some code imports `timm` (the `accelerate`
CLI does, for its memory estimator). Then the finder imports timm through `_timm_compat.import_timm` (which supplies
a stand-in for torchvision only if torchvision cannot be imported) and hands the imported module to the import
system. This file must stay free of imports beyond the standard library: it runs in every Python process of the
environment.
"""

import importlib.abc
import importlib.util
import os
import sys

_COMPAT_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_timm_compat.py")


class _ImportedModuleLoader(importlib.abc.Loader):
    def __init__(self, module):
        self.module = module

    def create_module(self, spec):
        return self.module

    def exec_module(self, module):
        pass


class TimmImportFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name != "timm":
            return None
        sys.meta_path[:] = [finder for finder in sys.meta_path if not isinstance(finder, TimmImportFinder)]
        spec = importlib.util.spec_from_file_location("_hf_iis_timm_compat", _COMPAT_FILE)
        compat = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(compat)
        module = compat.import_timm()
        real_spec = module.__spec__
        new_spec = importlib.util.spec_from_loader(name, _ImportedModuleLoader(module), origin=real_spec.origin,
                                                   is_package=True)
        new_spec.submodule_search_locations = real_spec.submodule_search_locations
        new_spec.has_location = real_spec.has_location
        # The import system, seeing `timm` already in sys.modules, loads whatever `timm.__spec__` says: point it at
        # the no-op loader so the module is not executed a second time.
        module.__spec__ = new_spec
        return new_spec


def install() -> None:
    if "timm" not in sys.modules and not any(isinstance(f, TimmImportFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, TimmImportFinder())


install()
