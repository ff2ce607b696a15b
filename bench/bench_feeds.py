"""Target 3: building feeds from a generated Markdown corpus; target 4's build memory.

For each corpus size (1,000 and, with BENCH_FULL=1, 10,000 posts):

- baseline, the libraries alone: read each file, split its YAML front
  matter (PyYAML), render the Markdown (markdown-it-py, the same options as
  publisher's reader), then serialise every post once into an RSS and an
  Atom feed (feedgen, full content) and write them, and render (Jinja2) and
  write a web page per post and the home pages, ten posts each: the least
  any tool must do to publish these posts as feeds and pages;
- publisher, in process: a cold build (``build_site`` then ``build_pages``,
  as ``publisher build`` does; empty state store, no feeds, no pages), a
  rebuild with nothing changed, a rebuild after one post changed;
- ``publisher build`` and Pelican (PyPI) as commands, cold: Pelican set to
  write feeds only (see ``PELICAN_CONF``), from the same posts with Pelican's
  metadata syntax;
- memory: the cold ``publisher build`` command's peak RSS against the bytes
  of the feeds it writes.

    .venv/bin/python -m bench.bench_feeds
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

from bench.common import FULL, NOW, PYTHON, heading, line, open_site, run_measured, timed, verdict
from bench.corpus import write_corpus

# Pelican writing feeds only: every page, index and archive template off,
# one RSS and one Atom feed of all posts with their full content.
PELICAN_CONF = """
AUTHOR = "Editor"
SITENAME = "War in Context"
SITEURL = "https://example.org"
FEED_DOMAIN = SITEURL
TIMEZONE = "UTC"
DEFAULT_LANG = "en"
PATH = "content"
ARTICLE_PATHS = [""]
STATIC_PATHS = []
THEME_STATIC_PATHS = []
FEED_ALL_ATOM = "feeds/all.atom.xml"
FEED_ALL_RSS = "feeds/all.rss.xml"
RSS_FEED_SUMMARY_ONLY = False
FEED_ATOM = None
FEED_RSS = None
CATEGORY_FEED_ATOM = None
CATEGORY_FEED_RSS = None
AUTHOR_FEED_ATOM = None
AUTHOR_FEED_RSS = None
TAG_FEED_ATOM = None
TAG_FEED_RSS = None
TRANSLATION_FEED_ATOM = None
TRANSLATION_FEED_RSS = None
ARTICLE_SAVE_AS = ""
ARTICLE_LANG_SAVE_AS = ""
DRAFT_SAVE_AS = ""
DRAFT_LANG_SAVE_AS = ""
PAGE_SAVE_AS = ""
PAGE_LANG_SAVE_AS = ""
AUTHOR_SAVE_AS = ""
CATEGORY_SAVE_AS = ""
TAG_SAVE_AS = ""
ARCHIVES_SAVE_AS = ""
AUTHORS_SAVE_AS = ""
CATEGORIES_SAVE_AS = ""
TAGS_SAVE_AS = ""
INDEX_SAVE_AS = ""
DIRECT_TEMPLATES = []
PAGINATED_TEMPLATES = {}
DELETE_OUTPUT_DIRECTORY = False
"""


def _baseline(posts: Path, out: Path) -> int:
    """Read, render and serialise with the libraries alone; bytes written."""
    import yaml
    from feedgen.feed import FeedGenerator
    from markdown_it import MarkdownIt
    from mdit_py_plugins.footnote import footnote_plugin

    md = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"]).use(footnote_plugin)
    entries = []
    for path in sorted(posts.glob("*.md")):
        _, front, body = path.read_text(encoding="utf-8").split("---\n", 2)
        meta = yaml.safe_load(front)
        entries.append((meta, md.render(body), path.stem))
    entries.reverse()  # newest first
    written = 0
    for kind in ("rss", "atom"):
        fg = FeedGenerator()
        fg.id("https://example.org/feeds/")
        fg.title("War in Context")
        fg.subtitle("News and views")
        fg.link(href="https://example.org/", rel="alternate")
        fg.language("en")
        fg.updated(entries[0][0]["date"])
        for meta, html, stem in entries:
            fe = fg.add_entry(order="append")
            url = f"https://example.org/{stem}/"
            fe.id(url)
            fe.title(meta["title"])
            fe.link(href=url)
            fe.published(meta["date"])
            fe.updated(meta["date"])
            fe.author({"name": meta["author"]})
            for tag in meta["tags"]:
                fe.category(term=tag)
            fe.content(html, type="html")
        data = fg.rss_str(pretty=True) if kind == "rss" else fg.atom_str(pretty=True)
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{kind}.xml").write_bytes(data)
        written += len(data)
    return written + _baseline_pages(entries, out / "public")


_BASELINE_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }} · War in Context</title>
<link rel="stylesheet" href="/style.css"></head><body><header><a href="/">War in Context</a></header><main>
{% for post in posts %}<article><h1><a href="{{ post.url }}">{{ post.title }}</a></h1>
<p><time datetime="{{ post.date }}">{{ post.date }}</time> · {{ post.author }}</p>
{% if full %}{{ post.html|safe }}{% endif %}
<p>{% for tag in post.tags %}<a href="/tags/{{ tag }}/">{{ tag }}</a> {% endfor %}</p></article>{% endfor %}
</main></body></html>
"""


def _baseline_pages(entries: list, out: Path) -> int:
    """A Jinja2 page per post and the home pages (ten posts each), written plainly."""
    from jinja2 import Environment

    template = Environment(autoescape=True).from_string(_BASELINE_PAGE)
    posts = [
        {"url": f"/{stem}/", "title": meta["title"], "date": meta["date"], "author": meta["author"], "tags": meta["tags"], "html": html}
        for meta, html, stem in entries
    ]
    written = 0
    pages = [(f"{post['url'][1:]}index.html", post["title"], [post], True) for post in posts]
    pages += [
        ("index.html" if n == 0 else f"page/{n // 10 + 1}/index.html", "Home", posts[n : n + 10], False)
        for n in range(0, len(posts), 10)
    ]
    for name, title, shown, full in pages:
        data = template.render(title=title, posts=shown, full=full).encode("utf-8")
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written += len(data)
    return written


def _site(root: Path, count: int) -> Path:
    root.mkdir(parents=True)
    write_corpus(root / "posts", count)
    config = root / "publisher.toml"
    config.write_text(
        '[site]\ntitle = "War in Context"\nurl = "https://example.org/"\ndescription = "News and views"\n'
        'language = "en"\ntimezone = "UTC"\nauthor = { name = "Editor", email = "editor@example.org" }\n\n'
        '[content]\npaths = ["posts"]\n\n[feeds]\nout = "feeds"\nitems = 20\nfull_content = true\n\n'
        '[state]\npath = ".publisher/state.db"\n',
        encoding="utf-8",
    )
    return config


def _build(config_path: Path, now=NOW):
    """What ``publisher build`` does: the feeds, then the pages."""
    from publisher.app.common import build

    config, store = open_site(config_path)
    try:
        return build(config, store, now)
    finally:
        store.close()


def _in_child(what: str, *arguments: str) -> tuple[float, object]:
    """Time one baseline or build_site() call in a fresh Python process, its
    imports done before the clock starts: every measurement starts from the
    same clean heap, not this process's (which grows with each round)."""
    result = subprocess.run(
        [PYTHON, "-m", "bench.bench_feeds", "--child", what, *arguments],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed: {result.stderr[-2000:]}")
    seconds, value = json.loads(result.stdout.strip().splitlines()[-1])
    return seconds, value


def _child(what: str, *arguments: str) -> None:
    _import_first()
    cpu = _cpu()
    if what == "baseline":
        seconds, value = timed(lambda: _baseline(Path(arguments[0]), Path(arguments[1])))
    else:
        seconds, (report, pages) = timed(lambda: _build(Path(arguments[0]), datetime.fromisoformat(arguments[1])))
        value = [len(report.site.posts), len(report.errors), len(report.written), len(pages.written)]
    print(json.dumps([seconds, [*value, _cpu() - cpu]] if what != "baseline" else [seconds, value]))


def _cpu() -> float:
    """CPU seconds of this process and of its children that ended (the parsers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _feed_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _pelican(root: Path, count: int) -> float | None:
    binary = shutil.which("pelican", path=str(Path(PYTHON).parent))
    if binary is None:
        line("Pelican", "not installed (pip install -e '.[bench]'): skipped")
        return None
    site = root / f"pelican-{count}"
    write_corpus(site / "content", count, flavour="pelican")
    (site / "pelicanconf.py").write_text(PELICAN_CONF, encoding="utf-8")
    code, seconds, _, err = run_measured([binary, "content", "-s", "pelicanconf.py", "-o", "output", "-q"], cwd=site)
    if code != 0 or not (site / "output" / "feeds" / "all.atom.xml").is_file():
        line("Pelican", f"failed (exit {code}): {err.strip()[-300:]}")
        return None
    return seconds


def _import_first() -> None:
    """Import what both sides use before any timing: imports are not the build."""
    import feedgen.feed  # noqa: F401
    import markdown_it  # noqa: F401
    import yaml  # noqa: F401

    import jinja2  # noqa: F401

    import publisher.app.common  # noqa: F401
    import publisher.feeds.build  # noqa: F401
    import publisher.pages.build  # noqa: F401
    import publisher.content.readers.markdown  # noqa: F401


def run() -> None:
    _import_first()
    sizes = (1_000, 10_000) if FULL else (1_000,)
    per_post: dict[int, float] = {}
    for count in sizes:
        heading(f"3. feeds: {count:,} Markdown posts")
        with tempfile.TemporaryDirectory(prefix="bench-feeds-") as tmp:
            root = Path(tmp)
            config_path = _site(root / "site", count)
            posts = config_path.parent / "posts"

            feeds = config_path.parent / "feeds"
            public = config_path.parent / "public"
            state = config_path.parent / ".publisher"
            changed = posts / "post-00042.md"
            original = changed.read_text(encoding="utf-8")
            # Best of a few rounds, each side alternating with the other: the
            # machine is shared, and a round disturbed by others says little.
            rounds = 3 if count <= 1_000 else 2
            baseline_seconds = cold_seconds = rebuild_seconds = one_seconds = float("inf")
            for round_ in range(rounds):
                for folder in (feeds, public, state, root / "baseline"):
                    shutil.rmtree(folder, ignore_errors=True)
                changed.write_text(original, encoding="utf-8")
                seconds, baseline_bytes = _in_child("baseline", str(posts), str(root / "baseline"))
                baseline_seconds = min(baseline_seconds, seconds)
                seconds, (published, rejected, _, cold_pages, cpu) = _in_child("build", str(config_path), NOW.isoformat())
                if seconds < cold_seconds:
                    cold_cpu = cpu
                cold_seconds = min(cold_seconds, seconds)
                assert published == count and not rejected, (published, rejected)
                seconds, (_, _, written, pages_written, _) = _in_child("build", str(config_path), (NOW + timedelta(minutes=10)).isoformat())
                rebuild_seconds = min(rebuild_seconds, seconds)
                assert not written and not pages_written
                changed.write_text(original + "\nOne more paragraph, edited.\n", encoding="utf-8")
                seconds, (_, _, one_written, one_pages, _) = _in_child("build", str(config_path), (NOW + timedelta(minutes=20)).isoformat())
                one_seconds = min(one_seconds, seconds)
                assert one_written and one_pages, "the changed post must reach the feeds and its page"
            written_bytes = _feed_bytes(feeds)
            page_bytes = _feed_bytes(public)
            per_post[count] = cold_seconds / count

            # The commands, cold, each from nothing: publisher build and Pelican.
            for folder in (feeds, public, state):
                shutil.rmtree(folder)
            code, cli_seconds, cli_peak, err = run_measured(
                [PYTHON, "-m", "publisher", "--config", str(config_path), "-q", "build"]
            )
            assert code == 0, err
            pelican_seconds = _pelican(root, count)

            line(f"(each timed in a fresh process, imports done first: best of {rounds} rounds)", "")
            line("baseline: read + markdown-it + feedgen RSS and Atom + Jinja2 pages", f"{baseline_seconds:.2f} s ({baseline_bytes / 1e6:.1f} MB written)")
            line("publisher: cold build (feeds and pages)", f"{cold_seconds:.2f} s, {written_bytes / 1e6:.1f} MB of feeds, {cold_pages} pages ({page_bytes / 1e6:.1f} MB)")
            line("  CPU time of it, parsing workers included", f"{cold_cpu:.2f} s ({cold_cpu / baseline_seconds:.2f}x the baseline's time)")
            line("  time per post", f"{cold_seconds / count * 1e3:.2f} ms")
            line("publisher: rebuild, nothing changed", f"{rebuild_seconds:.3f} s ({rebuild_seconds / cold_seconds:.1%} of cold)")
            line("publisher: rebuild, one post changed", f"{one_seconds:.3f} s ({one_seconds / cold_seconds:.1%} of cold), {one_written} feeds and {one_pages} pages rewritten")
            line("`publisher build` command, cold", f"{cli_seconds:.2f} s")
            if pelican_seconds is not None:
                line("`pelican` command, cold, feeds only", f"{pelican_seconds:.2f} s")
            line("peak RSS of `publisher build` (with its workers) / feed bytes", f"{cli_peak:.0f} MB / {written_bytes / 1e6:.1f} MB")

            tag = f"3 feeds ({count:,} posts)"
            verdict(f"{tag}: cold vs libraries alone", f"{cold_seconds:.2f} s vs {baseline_seconds:.2f} s", cold_seconds / baseline_seconds, "<= 1.5", cold_seconds <= 1.5 * baseline_seconds)
            if pelican_seconds is not None:
                verdict(f"{tag}: publisher build vs Pelican", f"{cli_seconds:.2f} s vs {pelican_seconds:.2f} s", cli_seconds / pelican_seconds, "< 1.0", cli_seconds < pelican_seconds)
            else:
                verdict(f"{tag}: publisher build vs Pelican", "Pelican did not run", None, "< 1.0", None)
            verdict(f"{tag}: unchanged rebuild", f"{rebuild_seconds:.3f} s", rebuild_seconds / cold_seconds, "<= 0.05", rebuild_seconds <= 0.05 * cold_seconds)
            verdict(f"{tag}: one post changed", f"{one_seconds:.3f} s", one_seconds / cold_seconds, "<= 0.10", one_seconds <= 0.10 * cold_seconds)
            ratio = cli_peak * 1e6 / written_bytes
            if count >= 10_000:
                verdict(f"4 build memory ({count:,} posts)", f"peak {cli_peak:.0f} MB for {written_bytes / 1e6:.1f} MB of feeds", ratio, "< 3.0", ratio < 3)
            else:
                line("  (the memory target is for 10,000 posts: BENCH_FULL=1)", f"{ratio:.1f}x here")
    if len(per_post) > 1:
        small, large = sorted(per_post)
        growth = per_post[large] / per_post[small]
        line("time per post, 10,000 / 1,000 (1.0 is linear)", f"{growth:.2f}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        _child(*sys.argv[2:])
    else:
        run()
