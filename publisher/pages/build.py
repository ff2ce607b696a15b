"""Writing the pages folder: the pages of a built site, its assets, the
redirects of moved posts, and nothing stale.

    report = build_pages(config, site, store=store, fingerprint=cache.fingerprint)
    report.written    # names (under [pages] out) of the files that changed
    report.removed    # files the build once wrote that it no longer produces

The same guarantees as the feeds: a page whose inputs are unchanged (the
digest the store keeps of each file written) is not made again while its
file is as the build left it; a page whose bytes are unchanged is not
rewritten; every changed page is staged beside its file and all are renamed
into place together, or none. Only files a build wrote are ever removed:
the folder may hold others. Where a post's page was and the post now lives
at another URL, a redirect page stays (and a line in ``_redirects``, the
map static hosts and ``publisher serve`` read).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from publisher.config import Config
from publisher.errors import OutputError
from publisher.feeds.build import writing_lock
from publisher.feeds.writer import StagedFiles, StagingMark, remove_temporaries
from publisher.model import Post, Site
from publisher.pages.assets import copy_asset, find_assets
from publisher.pages.context import PageContext
from publisher.pages.plan import ROBOTS, ArchivedIssue, PageDocument, PageOptions, page_name, plan_pages
from publisher.pages.templates import SiteTemplates
from publisher.state import PageOutput, StateStore

log = logging.getLogger("publisher.pages.build")

REDIRECTS = "_redirects"


@dataclass(frozen=True)
class PagesReport:
    files: tuple[str, ...] = ()
    written: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    redirects: tuple[str, ...] = ()  # names of the redirect pages
    assets: tuple[str, ...] = ()  # names of the assets copied this time

    @property
    def unchanged(self) -> tuple[str, ...]:
        return tuple(f for f in self.files if f not in self.written)


def site_templates(config: Config) -> SiteTemplates:
    return SiteTemplates.load(config.mail.templates / "site")


def staging_mark(config: Config) -> Path:
    """The file beside the state store that is there while pages may be staged
    (``StagedFiles``): a build looks through the pages folder for what a
    killed one left only when it is."""
    state = config.state.path
    return state.with_name(state.name + ".pages-staging")


def page_options(config: Config, store: StateStore, *, robots: bool = True) -> PageOptions:
    issues = tuple(
        ArchivedIssue(i.list_name, i.number, i.subject, i.created, f"{config.site.url}issues/{i.list_name}/{i.number}/")
        for i in store.issues.archived()
    )
    return PageOptions(
        per_page=config.pages.per_page,
        lists=tuple((name, lst.title) for name, lst in config.lists.items()),
        subscribe=config.pages.subscribe,
        robots=robots,
        issues=issues,
    )


def build_pages(
    config: Config,
    site: Site,
    *,
    store: StateStore,
    fingerprint: Callable[[Post], bytes | None] | None = None,
    force: bool = False,
) -> PagesReport:
    """Write the pages of ``site`` into ``[pages] out``; raises ``OutputError``.

    Under the build's lock, as the feeds are written: two builds never
    write the pages folder at once."""
    if not config.pages.enabled:
        return PagesReport()
    lock = writing_lock(config)
    try:
        return _write_pages(config, site, store, fingerprint, force)
    finally:
        lock.release()


def _write_pages(
    config: Config, site: Site, store: StateStore, fingerprint: Callable[[Post], bytes | None] | None, force: bool
) -> PagesReport:
    out = config.pages.out
    mark = StagingMark(staging_mark(config))
    for leftover in remove_temporaries(out, mark.path):
        log.info("removed %s, left by an interrupted build", config.relative(leftover))
    templates = site_templates(config)
    assets = find_assets(config, site)
    options = page_options(config, store, robots=ROBOTS not in assets)
    documents = plan_pages(site, options, templates, fingerprint=fingerprint)
    documents = [d for d in documents if d.name not in assets]
    known = store.builds.page_outputs()
    documents += _redirects(config, site, documents, known, PageContext(site.info, options, templates))
    staged = StagedFiles(force=force, many=True, mark=mark)
    made: list[PageDocument] = []
    try:
        for document in documents:
            before = known.get(document.name)
            path = out / document.name
            if not force and before is not None and before.digest == document.digest and _as_left(path, before):
                continue
            made.append(document)
            staged.add(path, document.render())
    except BaseException:
        staged.discard()
        raise
    changed = set(staged.commit())
    outputs, written = [], []
    for document in made:
        path = out / document.name
        look = staged.looks.get(path)
        if look is None:  # its file was as it is already
            stat = path.stat()
            look = (stat.st_size, stat.st_mtime_ns)
        outputs.append(PageOutput(document.name, document.digest, *look, document.post))
        if path in changed:
            written.append(document.name)
            log.debug("wrote %s", config.relative(path))
    copied = []
    for name, source in assets.items():
        if copy_asset(source, out / name, force, before=mark.set):
            copied.append(name)
            log.debug("copied %s to %s", config.relative(source), config.relative(out / name))
        stat = (out / name).stat()
        digest = "asset:" + hashlib.sha256(str(source).encode("utf-8", "surrogatepass")).hexdigest()
        output = PageOutput(name, digest, stat.st_size, stat.st_mtime_ns)
        if known.get(name) != output:
            outputs.append(output)
    mark.clear()  # no temporary file of the assets is left either
    names = {d.name for d in documents} | set(assets)
    removed = _remove_stale(config, out, known, names)
    outputs = [o for o in outputs if o != known.get(o.name)]
    if outputs or removed:
        with store.transaction():
            store.builds.remember_page_outputs(outputs)
            store.builds.forget_page_outputs(removed)
    redirects = tuple(d.name for d in documents if d.post and d.digest.startswith(("redirect:", "alias:")))
    return PagesReport(
        tuple(d.name for d in documents), tuple(written + copied), tuple(removed), redirects, tuple(copied)
    )


def check_pages(config: Config, site: Site, *, store: StateStore) -> None:
    """Make one page of each template (a post's, a listing, the indexes, …)
    and write none; raises ``OutputError`` naming a template that fails."""
    templates = site_templates(config)
    documents = plan_pages(site, page_options(config, store), templates)
    kinds: dict[str, PageDocument] = {}
    for document in documents:
        kinds.setdefault(_template_of(document), document)
    for document in kinds.values():
        document.render()
    PageContext(site.info, page_options(config, store), templates).redirect(config.site.url)


def _template_of(document: PageDocument) -> str:
    """Which template makes ``document`` (by its name)."""
    name = document.name
    if document.post:
        return "post.html"
    if name in ("tags/index.html", "authors/index.html"):
        return "terms.html"
    if name == "archives/index.html" or re.fullmatch(r"\d{4}/index\.html", name):
        return "archives.html"
    if name.startswith("issues/"):
        return "issues.html"
    return name if "/" not in name and name != "index.html" else "list.html"


def _redirects(
    config: Config, site: Site, documents: list[PageDocument], known: dict[str, PageOutput], context: PageContext
) -> list[PageDocument]:
    """A redirect page where a post's page was and the post is now at
    another URL of the site, and at each of its ``aliases``; and the
    ``_redirects`` map of them all."""
    planned = {d.name for d in documents}
    where = {p.id: p.url for p in site.posts if p.id and p.url and page_name(config.site.url, p.url)}
    moved: dict[str, str] = {}  # the page's name -> the id of the post it now sends to
    aliases: set[str] = set()
    for post in site.posts:
        if post.id in where:
            for alias in post.aliases:
                url = alias if "://" in alias else config.site.url + alias.lstrip("/")
                name = page_name(config.site.url, url)
                if name is not None and name not in planned:
                    moved.setdefault(name, post.id)
                    aliases.add(name)
                elif name is None:
                    log.warning("%s: alias %s is not under [site] url: no page made for it", post.source, alias)
    for name, output in sorted(known.items()):
        # Where a post's page was, a redirect stays; an alias dropped from the post goes.
        if output.post and output.post in where and name not in planned and not output.digest.startswith("alias:"):
            moved.setdefault(name, output.post)
    moved.pop(REDIRECTS, None)
    found = []
    for name, post in sorted(moved.items()):
        target = where[post]
        kind = "alias:" if name in aliases else "redirect:"
        digest = kind + hashlib.sha256(f"{context.templates.digest}\x00{target}".encode("utf-8")).hexdigest()
        found.append(PageDocument(name, digest, lambda target=target: context.redirect(target), post))
    if found:
        lines = [f"{_path(config, d.name)} {context.link(where[d.post])} 301\n" for d in found if d.post]
        data = "".join(lines).encode("utf-8")
        found.append(PageDocument(REDIRECTS, "map:" + hashlib.sha256(data).hexdigest(), lambda: data))
    return found


def _path(config: Config, name: str) -> str:
    """The URL path (from the host's root) a file of the pages folder is served at."""
    from urllib.parse import urlsplit

    from publisher.text import uri_path

    root = urlsplit(config.site.url).path or "/"
    return root + uri_path(name[: -len("index.html")] if name.endswith("index.html") else name)


def _remove_stale(config: Config, out: Path, known: dict[str, PageOutput], names: set[str]) -> list[str]:
    """Remove the files a build wrote that this one does not produce, and the folders they leave empty."""
    removed = []
    for name in sorted(known):
        if name in names:
            continue
        path = out / name
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise OutputError(f"{path}: cannot remove: {exc.strerror}") from exc
        removed.append(name)
        log.info("removed %s", config.relative(path))
        folder = path.parent
        while folder != out and folder.is_relative_to(out):
            try:
                folder.rmdir()  # only when empty
            except OSError:
                break
            folder = folder.parent
    return removed


def _as_left(path: Path, output: PageOutput) -> bool:
    try:
        stat = path.stat()
    except OSError:
        return False
    return stat.st_size == output.size and stat.st_mtime_ns == output.mtime_ns
