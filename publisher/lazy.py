"""What a stage offers at its top, loaded when first used.

Each stage package (``publisher.state``, ``content``, ``feeds``, ``mail``)
names what other stages may import from it; importing the package loads
none of its modules, so ``publisher --help`` or ``publisher status`` do not
pay for premailer, lxml or Flask. The first access to a name imports the
module that defines it:

    __getattr__, __dir__ = exports(__name__, {"build_site": "build", ...})
    # from publisher.feeds import build_site  -> imports publisher.feeds.build
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def exports(package: str, names: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A module ``__getattr__`` and ``__dir__`` for ``package``: each of
    ``names`` maps to the submodule (relative to ``package``) defining it."""

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        importlib.import_module(package).__dict__[name] = value  # found directly from now on
        return value

    def __dir__() -> list[str]:
        return sorted(names)

    return __getattr__, __dir__
