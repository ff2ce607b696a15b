"""Where the default templates are: ``templates/`` of the project.

An installed package carries them as ``publisher.templates``; a source
checkout (an editable install run from the checkout) has them beside the
package folder.

    xsl = default_templates() / "feed.xsl"
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import publisher


def default_templates() -> Path:
    """The folder of the default templates."""
    checkout = Path(publisher.__file__).resolve().parent.parent / "templates"
    if (checkout / "feed.xsl").is_file():
        return checkout
    return Path(str(resources.files("publisher.templates")))
