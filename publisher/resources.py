"""Where the default templates are: ``templates/`` of the project.

An installed package carries them as ``publisher.templates``; a source
checkout (an editable install run from the checkout) has them beside the
package folder.

    xsl = default_templates() / "feed.xsl"
    Environment(..., bytecode_cache=compiled_templates())
"""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path

import publisher

log = logging.getLogger("publisher")


def default_templates() -> Path:
    """The folder of the default templates."""
    checkout = Path(publisher.__file__).resolve().parent.parent / "templates"
    if (checkout / "feed.xsl").is_file():
        return checkout
    return Path(str(resources.files("publisher.templates")))


def compiled_templates():
    """Where Jinja2 keeps compiled templates between runs (a
    ``FileSystemBytecodeCache`` in its folder for this user; a template is
    compiled again when its source changes), or None when no folder of this
    user's can hold them. A compiled template that cannot be kept is no error."""
    from jinja2.bccache import FileSystemBytecodeCache

    class CompiledTemplates(FileSystemBytecodeCache):
        def dump_bytecode(self, bucket) -> None:
            try:
                super().dump_bytecode(bucket)
            except OSError as exc:
                log.debug("cannot keep a compiled template: %s", exc)

    try:
        return CompiledTemplates()
    except (OSError, RuntimeError) as exc:
        log.debug("compiled templates are not kept: %s", exc)
        return None
