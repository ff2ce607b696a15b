"""The templates of the web pages: Jinja2, ``templates/site/`` of the project,
each overridable by a file of the same name in the site's ``templates/site/``.

    templates = SiteTemplates.load(site_folder=config.mail.templates / "site")
    html = templates.render("post.html", post=post, ...)
    templates.digest      # changes whenever any template's bytes do

Undefined names are errors (``StrictUndefined``) naming the template and
line, never an empty page.
"""

from __future__ import annotations

import hashlib
import logging
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from markupsafe import Markup
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, TemplateError, select_autoescape

from publisher.errors import OutputError
from publisher.resources import compiled_templates, default_templates

log = logging.getLogger("publisher.pages.templates")

# The files a site may override (and the stylesheet, copied as it is).
TEMPLATE_NAMES = (
    "base.html",
    "post.html",
    "list.html",
    "summary.html",
    "terms.html",
    "archives.html",
    "issues.html",
    "404.html",
    "redirect.html",
    "sitemap.xml",
    "robots.txt",
    "style.css",
)


def default_site_templates() -> Path:
    return default_templates() / "site"


@dataclass(frozen=True)
class SiteTemplates:
    """The page templates of one site, with a digest of every file they are read from."""

    environment: Environment
    digest: str
    folders: tuple[Path, ...]

    @classmethod
    def load(cls, site_folder: Path | None) -> SiteTemplates:
        folders = tuple(f for f in (site_folder, default_site_templates()) if f is not None and f.is_dir())
        environment = Environment(
            loader=ChoiceLoader([FileSystemLoader(str(folder)) for folder in folders]),
            undefined=StrictUndefined,
            autoescape=select_autoescape(["html", "xml"]),
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            # Loaded for one build (the digest is of the files as they were):
            # no look at each file's time before each page.
            auto_reload=False,
            bytecode_cache=compiled_templates(),
        )
        digest = hashlib.sha256()
        for folder in folders:
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    digest.update(path.relative_to(folder).as_posix().encode("utf-8") + b"\x00")
                    digest.update(hashlib.sha256(path.read_bytes()).digest())
            digest.update(b"\x01")
        return cls(environment, digest.hexdigest(), folders)

    def render(self, name: str, **context: Any) -> bytes:
        """The template ``name`` rendered; raises ``OutputError`` naming the template and line."""
        return self.fragment(name, **context).encode("utf-8")

    def fragment(self, name: str, **context: Any) -> Markup:
        """The template ``name`` rendered, as markup another template inserts
        as it is; raises ``OutputError`` naming the template and line."""
        try:
            return Markup(self.environment.get_template(name).render(**context))
        except (TemplateError, TypeError, ValueError, AttributeError, ArithmeticError) as exc:
            where, line = getattr(exc, "filename", None) or name, getattr(exc, "lineno", None)
            if line is None:
                # Jinja2 rewrites tracebacks so that template frames carry
                # the template's file and line.
                for frame in traceback.extract_tb(exc.__traceback__):
                    if not frame.filename.endswith(".py"):
                        where, line = frame.filename, frame.lineno
            message = exc.message if isinstance(exc, TemplateError) and exc.message else f"{exc}"
            raise OutputError(f"{where}{f':{line}' if line else ''}: {message}") from exc

    @staticmethod
    def markup(text: str) -> Markup:
        """``text``, made by a template before, for a template to insert as it is."""
        return Markup(text)

    def source(self, name: str) -> bytes:
        """A file's bytes as they are (the stylesheet), from the site's folder first."""
        for folder in self.folders:
            path = folder / name
            if path.is_file():
                try:
                    return path.read_bytes()
                except OSError as exc:
                    raise OutputError(f"{path}: cannot read: {exc.strerror}") from exc
        raise OutputError(f"{name}: no such template (looked in {', '.join(map(str, self.folders))})")
