"""Compiled templates kept between runs: a build does not compile a template
whose source it compiled before, compiles one whose source changed, and
goes on when the compiled template cannot be kept."""

from __future__ import annotations

import errno
import tempfile
from pathlib import Path

import jinja2
import pytest
from jinja2.bccache import FileSystemBytecodeCache

from publisher.pages.templates import SiteTemplates


@pytest.fixture
def compiled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The templates compiled from now on; the compiled ones kept under this test's folder."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    names: list[str] = []
    real = jinja2.Environment.compile

    def counting(self, source, name=None, filename=None, raw=False, defer_init=False):
        names.append(name)
        return real(self, source, name, filename, raw, defer_init)

    monkeypatch.setattr(jinja2.Environment, "compile", counting)
    return names


def _render(site_folder: Path) -> bytes:
    templates = SiteTemplates.load(site_folder)
    return templates.render("robots.txt", sitemap="https://example.org/sitemap.xml")


def test_a_template_compiled_once_is_not_compiled_again(tmp_path: Path, compiled: list[str]) -> None:
    site = tmp_path / "site"
    site.mkdir()
    first = _render(site)
    assert compiled == ["robots.txt"]
    assert list((tmp_path / "tmp").glob("_jinja2-cache-*/*.cache")), "kept in the user's own folder"
    assert _render(site) == first and compiled == ["robots.txt"], "the second run used the kept one"
    (site / "robots.txt").write_text("User-agent: *\nDisallow: /{{ 'drafts' }}/\n", encoding="utf-8")
    assert _render(site) == b"User-agent: *\nDisallow: /drafts/\n"
    assert compiled == ["robots.txt", "robots.txt"], "a changed source is compiled again"


def test_a_compiled_template_that_cannot_be_kept_is_no_error(
    tmp_path: Path, compiled: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(self, bucket):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(FileSystemBytecodeCache, "dump_bytecode", full)
    site = tmp_path / "site"
    site.mkdir()
    assert b"Sitemap: https://example.org/sitemap.xml" in _render(site)
    assert b"Sitemap: https://example.org/sitemap.xml" in _render(site)
    assert compiled == ["robots.txt", "robots.txt"]
