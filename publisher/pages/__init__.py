"""The pages stage: a built site becomes static web pages (a page per post at
its URL, the home page, tag, author and date archives, the issue archive,
the sitemap), written atomically and only when they change;
``build_pages`` writes them all."""

from typing import TYPE_CHECKING

from publisher.lazy import exports

__getattr__, __dir__ = exports(
    __name__,
    {
        "PagesReport": "build",
        "build_pages": "build",
        "check_pages": "build",
        "site_templates": "build",
        "REDIRECTS": "build",
        "PageOptions": "plan",
        "plan_pages": "plan",
        "page_name": "plan",
    },
)

__all__ = [
    "PageOptions",
    "PagesReport",
    "REDIRECTS",
    "build_pages",
    "check_pages",
    "page_name",
    "plan_pages",
    "site_templates",
]

if TYPE_CHECKING:
    from publisher.pages.build import REDIRECTS, PagesReport, build_pages, check_pages, site_templates
    from publisher.pages.plan import PageOptions, page_name, plan_pages
