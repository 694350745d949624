"""A user's code, imported by module name or from path/to/file.py (relative to the project root), refused in one line naming the key."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from sftboot.core.errors import UserError


def import_user_module(target: str, key: str) -> ModuleType:
    """The module `target` names: `package.module` (installed) or `path/to/file.py`; `key` is the params key that named it."""
    try:
        if not target.endswith(".py"):
            return importlib.import_module(target)
        path = Path(target)
        if not path.exists():
            raise UserError(f"{key}: no file {target}; give the path from the project root")
        spec = importlib.util.spec_from_file_location(f"sftboot_env_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses and pickling look a class's module up there
        spec.loader.exec_module(module)
        return module
    except ImportError as error:
        raise UserError(f"{key}: cannot import {target} ({error}); install it or fix the name") from None
