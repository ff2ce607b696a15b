"""Build WordPress exports (WXR) for tests, in the shape WordPress 6.x writes.

    data = export([item(1, "Hello"), item(2, "Draft", status="draft")])
    big = export(item(n, f"Post {n}", content=long_text) for n in range(1, 4001))

Everything is text in CDATA, as WordPress writes it; ``extra`` fields let a
test put in whatever raw XML it needs.
"""

from __future__ import annotations

from collections.abc import Iterable

WP_1_2 = "http://wordpress.org/export/1.2/"

AUTHORS = (("editor", "Paul Woodward", "editor@example.org"),)


def cdata(text: str) -> str:
    """``text`` in a CDATA section (a ``]]>`` inside split the way WordPress does)."""
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def comment(
    comment_id: int,
    author: str = "Reader",
    content: str = "A comment.",
    date_gmt: str = "2024-03-05 15:00:00",
    *,
    date: str = "2024-03-05 10:00:00",
    approved: str = "1",
    kind: str = "comment",
    parent: int = 0,
    url: str = "",
) -> str:
    return f"""
		<wp:comment>
			<wp:comment_id>{comment_id}</wp:comment_id>
			<wp:comment_author>{cdata(author)}</wp:comment_author>
			<wp:comment_author_email>{cdata("reader@example.com")}</wp:comment_author_email>
			<wp:comment_author_url>{url}</wp:comment_author_url>
			<wp:comment_author_IP>{cdata("192.0.2.1")}</wp:comment_author_IP>
			<wp:comment_date>{cdata(date)}</wp:comment_date>
			<wp:comment_date_gmt>{cdata(date_gmt)}</wp:comment_date_gmt>
			<wp:comment_content>{cdata(content)}</wp:comment_content>
			<wp:comment_approved>{cdata(approved)}</wp:comment_approved>
			<wp:comment_type>{cdata(kind)}</wp:comment_type>
			<wp:comment_parent>{parent}</wp:comment_parent>
			<wp:comment_user_id>0</wp:comment_user_id>
		</wp:comment>"""


def item(
    post_id: int | str,
    title: str = "A post",
    content: str = "Some text.",
    *,
    status: str = "publish",
    post_type: str = "post",
    date_gmt: str = "2024-03-05 14:30:00",
    date: str = "2024-03-05 09:30:00",
    creator: str = "editor",
    excerpt: str = "",
    password: str = "",
    comment_status: str = "open",
    categories: Iterable[tuple[str, str]] = (),
    comments: Iterable[str] = (),
    extra: str = "",
    guid: str | None = None,
    parent: int | str = 0,
) -> str:
    """One ``<item>``; ``categories`` are (domain, name) pairs."""
    guid = f"https://example.org/?p={post_id}" if guid is None else guid
    terms = "".join(
        f'\n\t\t<category domain="{domain}" nicename="{name.lower()}">{cdata(name)}</category>'
        for domain, name in categories
    )
    return f"""
	<item>
		<title>{cdata(title)}</title>
		<link>https://example.org/{post_id}/</link>
		<pubDate>Tue, 05 Mar 2024 14:30:00 +0000</pubDate>
		<dc:creator>{cdata(creator)}</dc:creator>
		<guid isPermaLink="false">{guid}</guid>
		<description></description>
		<content:encoded>{cdata(content)}</content:encoded>
		<excerpt:encoded>{cdata(excerpt)}</excerpt:encoded>
		<wp:post_id>{post_id}</wp:post_id>
		<wp:post_date>{cdata(date)}</wp:post_date>
		<wp:post_date_gmt>{cdata(date_gmt)}</wp:post_date_gmt>
		<wp:post_modified>{cdata(date)}</wp:post_modified>
		<wp:post_modified_gmt>{cdata(date_gmt)}</wp:post_modified_gmt>
		<wp:comment_status>{cdata(comment_status)}</wp:comment_status>
		<wp:ping_status>{cdata("open")}</wp:ping_status>
		<wp:post_name>{cdata(f"post-{post_id}")}</wp:post_name>
		<wp:status>{cdata(status)}</wp:status>
		<wp:post_parent>{parent}</wp:post_parent>
		<wp:menu_order>0</wp:menu_order>
		<wp:post_type>{cdata(post_type)}</wp:post_type>
		<wp:post_password>{cdata(password)}</wp:post_password>
		<wp:is_sticky>0</wp:is_sticky>{terms}{extra}{"".join(comments)}
	</item>"""


def header(wp_namespace: str = WP_1_2, authors: Iterable[tuple[str, str, str]] = AUTHORS) -> str:
    people = "".join(
        f"\n\t<wp:author><wp:author_id>{n}</wp:author_id><wp:author_login>{cdata(login)}</wp:author_login>"
        f"<wp:author_email>{cdata(email)}</wp:author_email>"
        f"<wp:author_display_name>{cdata(name)}</wp:author_display_name></wp:author>"
        for n, (login, name, email) in enumerate(authors, start=1)
    )
    version = wp_namespace.rstrip("/").rsplit("/", 1)[-1]
    return f"""<?xml version="1.0" encoding="UTF-8" ?>
<!-- generator="WordPress/6.4.3" created="2024-03-20 17:02" -->
<rss version="2.0"
	xmlns:excerpt="{wp_namespace}excerpt/"
	xmlns:content="http://purl.org/rss/1.0/modules/content/"
	xmlns:wfw="http://wellformedweb.org/CommentAPI/"
	xmlns:dc="http://purl.org/dc/elements/1.1/"
	xmlns:wp="{wp_namespace}"
>
<channel>
	<title>Test Site</title>
	<link>https://example.org</link>
	<description>Tests</description>
	<language>en-US</language>
	<wp:wxr_version>{version}</wp:wxr_version>
	<wp:base_site_url>https://example.org</wp:base_site_url>
	<wp:base_blog_url>https://example.org</wp:base_blog_url>{people}
"""


FOOTER = "\n</channel>\n</rss>\n"


def export(
    items: Iterable[str],
    *,
    wp_namespace: str = WP_1_2,
    authors: Iterable[tuple[str, str, str]] = AUTHORS,
) -> bytes:
    """A whole export as UTF-8 bytes."""
    parts = [header(wp_namespace, authors)]
    parts.extend(items)
    parts.append(FOOTER)
    return "".join(parts).encode("utf-8")


def long_text(n: int, paragraphs: int = 12) -> str:
    """Classic-editor text of about ``paragraphs`` × 600 characters, marked with ``n``."""
    sentence = f"Paragraph {{p}} of post {n} says something about the news of the day, at length. "
    return "\n\n".join((sentence.format(p=p) * 7).strip() for p in range(paragraphs))
