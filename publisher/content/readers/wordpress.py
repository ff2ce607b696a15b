"""What WordPress does to a post's text when it shows it, redone small.

The WXR reader gives each post's ``content:encoded`` to ``render_content``:
block comments and ``<!--more-->`` are dropped, ``[caption]`` becomes a
``<figure>``, ``[embed]`` and a URL alone on its line become links,
``[audio]`` and ``[video]`` players with a link to the file, ``[gallery]``
a placeholder the reader fills with the export's attachments; any other
shortcode is kept as written and its name reported, and classic (non-block)
posts get ``wpautop``'s paragraphs and line breaks (``autop``, after
WordPress 6.x's ``wp-includes/formatting.php``). ``plain_text`` and
``plain_paragraphs`` give the text of such HTML.

    render_content("First line\nsecond\n\n[caption]<img src=a.png> A[/caption]")
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator

from publisher.text import one_line, xml_safe

# -- HTML helpers -----------------------------------------------------------

# wpautop's block elements (WordPress 6.x), matched as whole tag names.
_BLOCK = (
    r"(?:table|thead|tfoot|caption|col|colgroup|tbody|tr|td|th|div|dl|dd|dt|ul|ol|li|pre"
    r"|form|map|area|blockquote|address|math|style|p|h[1-6]|hr|fieldset|legend|section"
    r"|article|aside|hgroup|header|footer|nav|figure|figcaption|details|menu|summary)"
)
_BLOCK_OPEN = re.compile(rf"(<{_BLOCK}[\s/>])", re.I)
_BLOCK_CLOSE = re.compile(rf"(</{_BLOCK}>)", re.I)
_BLOCK_TAG = rf"</?{_BLOCK}\b[^<>]*>"
# Elements autop leaves alone entirely: their inside is not paragraphs.
_OPAQUE_OPEN = re.compile(r"<(pre|figure|script|style|svg)\b[^<>]*>", re.I)
_PRE_OPEN = re.compile(r"<(pre)\b[^<>]*>", re.I)
_SCRIPT_STYLE_OPEN = re.compile(r"<(script|style)\b[^<>]*>", re.I)
_COMMENT_OPEN = re.compile(r"<!--")
_KEEP = re.compile(r'<pre wxr-autop-keep="(\d+)"></pre>')
_ANY_TAG = re.compile(r"<[a-zA-Z/!][^<>]*>")


def _closing_tag(match: re.Match[str]) -> str:
    return f"</{match.group(1).lower()}>"


def _pairs(
    text: str,
    opening: re.Pattern[str],
    closing: Callable[[re.Match[str]], str],
    *,
    ignore_case: bool,
) -> Iterator[tuple[re.Match[str], int, int]]:
    """Each ``opening`` match, where its closing string starts, and where it ends.

    A closing string not found once is not looked for again, so broken
    markup (a thousand unclosed ``<pre>``) costs linear time, not quadratic.
    """
    haystack = text.lower() if ignore_case else text
    unclosed: set[str] = set()
    position = 0
    while (match := opening.search(text, position)) is not None:
        close = closing(match)
        at = -1 if close in unclosed else haystack.find(close, match.end())
        if at < 0:
            unclosed.add(close)
            position = match.end()
            continue
        yield match, at, at + len(close)
        position = at + len(close)


def _replace_pairs(
    text: str,
    opening: re.Pattern[str],
    closing: Callable[[re.Match[str]], str],
    replace_pair: Callable[[re.Match[str], str, str], str],
    *,
    outside: Callable[[str], str] = lambda part: part,
    ignore_case: bool = True,
) -> str:
    """``text`` with each opening…closing pair replaced by ``replace_pair(match,
    inner, whole)`` and the text between pairs by ``outside(text)``."""
    out: list[str] = []
    last = 0
    for match, inner_end, end in _pairs(text, opening, closing, ignore_case=ignore_case):
        out.append(outside(text[last : match.start()]))
        out.append(replace_pair(match, text[match.end() : inner_end], text[match.start() : end]))
        last = end
    out.append(outside(text[last:]))
    return "".join(out)


def _as_written(match: re.Match[str], inner: str, whole: str) -> str:
    return whole


def _without_comments(text: str) -> str:
    if "<!--" not in text:
        return text
    return _replace_pairs(text, _COMMENT_OPEN, lambda m: "-->", lambda m, inner, whole: "")


def _outside_pre(text: str, change: Callable[[str], str]) -> str:
    """``change`` applied to the text outside ``<pre>`` elements."""
    return _replace_pairs(text, _PRE_OPEN, _closing_tag, _as_written, outside=change)


_I = re.I
# Before splitting into paragraphs: block tags stand apart.
_AUTOP_BLOCKS: tuple[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...] = (
    (re.compile(r"<br\s*/?>\s*<br\s*/?>", _I), "\n\n"),
    (_BLOCK_OPEN, r"\n\n\1"),
    (_BLOCK_CLOSE, r"\1\n\n"),
    (re.compile(r"(<hr\s*/?>)", _I), r"\1\n\n"),
    # A newline inside a tag (between attributes) is not a line break.
    (re.compile(r"<[^<>]*\n[^<>]*>"), lambda m: m.group(0).replace("\n", " ")),
)
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
# After: no <p> around blocks, then <br /> for the newlines left inside paragraphs.
_AUTOP_UNWRAP: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"<p>\s*</p>"), ""),
    (re.compile(r"<p>([^<]+)</(div|address|form)>", _I), r"<p>\1</p></\2>"),
    (re.compile(rf"<p>\s*({_BLOCK_TAG})\s*</p>", _I), r"\1"),
    (re.compile(r"<p>(<li.+?)</p>", _I), r"\1"),
    (re.compile(r"<p><blockquote([^<>]*)>", _I), r"<blockquote\1><p>"),
    (re.compile(r"</blockquote></p>", _I), "</p></blockquote>"),
    (re.compile(rf"<p>\s*({_BLOCK_TAG})", _I), r"\1"),
    (re.compile(rf"({_BLOCK_TAG})\s*</p>", _I), r"\1"),
)
_AUTOP_BREAKS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(rf"({_BLOCK_TAG})\s*<br />", _I), r"\1"),
    (re.compile(r"<br />(\s*</?(?:p|li|div|dl|dd|dt|th|pre|td|ul|ol)\b[^<>]*>)", _I), r"\1"),
    (re.compile(r"\n</p>$"), "</p>"),
)


_BR = re.compile(r"<br\s*/?>", _I)


def _line_breaks(text: str) -> str:
    """Each newline left inside a paragraph as ``<br />``, trailing blanks dropped.

    (wpautop's ``(?<!<br />)\\s*\\n``, line by line: that regex takes
    quadratic time on a long run of spaces.)
    """
    lines = text.split("\n")
    for i, line in enumerate(lines[:-1]):
        line = line.rstrip()
        lines[i] = line if line.endswith("<br />") else line + "<br />"
    return "\n".join(lines)


def autop(text: str) -> str:
    """WordPress's ``wpautop``, the parts that matter for a feed.

    Text separated by blank lines becomes ``<p>`` paragraphs and single
    newlines ``<br />``, except around block elements (``<p>``, lists,
    ``<blockquote>``, tables, headings, ``<div>``, ``<figure>`` …); the
    inside of ``<pre>``, ``<figure>``, ``<script>``, ``<style>`` and
    ``<svg>`` is left exactly as written.

    >>> autop("One\\ntwo\\n\\nThree")
    '<p>One<br />\\ntwo</p>\\n<p>Three</p>'
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        return ""
    kept: list[str] = []

    def keep(match: re.Match[str], inner: str, whole: str) -> str:
        kept.append(whole)
        return f'<pre wxr-autop-keep="{len(kept) - 1}"></pre>'

    text = _replace_pairs(text + "\n", _OPAQUE_OPEN, _closing_tag, keep)
    for pattern, replacement in _AUTOP_BLOCKS:
        text = pattern.sub(replacement, text)
    paragraphs = _PARAGRAPH_BREAK.split(text)
    text = "".join(f"<p>{p.strip(chr(10))}</p>\n" for p in paragraphs if p.strip())
    for pattern, replacement in _AUTOP_UNWRAP:
        text = pattern.sub(replacement, text)
    text = _line_breaks(_BR.sub("<br />", text))
    for pattern, replacement in _AUTOP_BREAKS:
        text = pattern.sub(replacement, text)
    text = _KEEP.sub(lambda m: kept[int(m.group(1))] if int(m.group(1)) < len(kept) else "", text)
    return text.strip()


# -- shortcodes -------------------------------------------------------------

# Shortcodes of WordPress itself, Jetpack and widespread plugins. Anything
# else counts as a shortcode only if its name looks like a plugin's: lower
# case with an underscore (vc_row, et_pb_text, su_note, mc4wp_form), which
# prose in brackets never has. "[Continue reading…]", "[1]", "[sic]",
# "[a-z]" and "[citation needed]" are text.
KNOWN_SHORTCODES = frozenset(
    {
        # WordPress core
        "audio", "caption", "wp_caption", "embed", "gallery", "playlist", "video",
        # Jetpack
        "archives", "bandcamp", "contact-form", "contact-field", "crowdsignal", "dailymotion",
        "facebook", "flickr", "gist", "googlemaps", "instagram", "latex", "polldaddy",
        "recipe", "slideshare", "soundcloud", "spotify", "ted", "tweet", "vimeo", "wpvideo",
        "youtube",
        # common plugins
        "sourcecode", "code", "gravityform", "wpforms", "nggallery", "singlepic",
        "imagebrowser", "slideshow", "products", "audioplayer", "contact-form-7",
        "pdf-embedder", "twitter-timeline",
    }
)  # fmt: skip
_PLUGIN_SHORTCODE = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*(?:_[a-z0-9-]+)+")

_SHORTCODE = re.compile(
    r"\[(?P<outer>\[)?(?P<close>/)?(?P<name>[A-Za-z][\w-]*)"
    r"(?P<attrs>\s[^\[\]]*?)?(?P<self>/)?\](?P<outer_end>\]?)"
)
_CAPTION_OPEN = re.compile(r"(?<!\[)\[(?P<tag>caption|wp_caption)(?P<attrs>\s[^\[\]]*?)?\]")
_EMBED_OPEN = re.compile(r"(?<!\[)\[(?P<tag>embed)(?P<attrs>\s[^\[\]]*?)?\]")
_CAPTION_IMAGE = re.compile(r"\s*((?:<a\s[^<>]*>\s*)?<img\s[^<>]*>(?:\s*</a>)?)(.*)", re.S | re.I)
_ATTRIBUTE = re.compile(r"""([\w-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"']+))""")
_CLASS_NAME = re.compile(r"[^\w-]")
_BARE_URL_LINE = re.compile(r"^[ \t]*(https?://[^\s<>\"'\[\]]+)[ \t]*$", re.M)
_BARE_URL_PARAGRAPH = re.compile(r"(<p(?:\s[^<>]*)?>\s*)(https?://[^\s<>\"'\[\]]+)(\s*</p>)", re.I)
_HTTP_URL = re.compile(r"^https?://[^\s<>\"]+$")


def is_shortcode(name: str) -> bool:
    """Whether ``[name`` opens a shortcode rather than bracketed text."""
    return name in KNOWN_SHORTCODES or _PLUGIN_SHORTCODE.fullmatch(name) is not None


def _attributes(text: str | None) -> dict[str, str]:
    return {
        m.group(1).lower(): html.unescape(next(v for v in m.groups()[1:] if v is not None))
        for m in _ATTRIBUTE.finditer(text or "")
    }


def _shortcode_end(match: re.Match[str]) -> str:
    return f"[/{match['tag']}]"


def _caption(match: re.Match[str], body: str, whole: str) -> str:
    attrs = _attributes(match["attrs"])
    image = _CAPTION_IMAGE.fullmatch(body)
    media, text = (image.group(1), image.group(2)) if image else (body, "")
    caption = one_line(text) or html.escape(one_line(attrs.get("caption", "")), quote=False)
    if not caption:
        return media.strip()
    extra = (_CLASS_NAME.sub("", attrs.get(name, "")) for name in ("align", "class"))
    classes = " ".join(["wp-caption", *(c for c in extra if c)])
    ident = _CLASS_NAME.sub("", attrs.get("id", ""))
    id_attr = f' id="{ident}"' if ident else ""
    return (
        f'<figure{id_attr} class="{classes}">{one_line(media)}'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def _link(url: str) -> str:
    safe = html.escape(url)
    return f'<a href="{safe}">{safe}</a>'


def _embed(match: re.Match[str], body: str, whole: str) -> str:
    url = html.unescape(body.strip())
    return _link(url) if _HTTP_URL.match(url) else body


GALLERY_PLACEHOLDER = '<figure class="gallery" data-wxr-gallery="{ids}"></figure>'
_MEDIA_EXTENSIONS = {
    "audio": ("mp3", "m4a", "ogg", "oga", "wav", "flac"),
    "video": ("mp4", "m4v", "webm", "ogv", "mov", "flv"),
}


def gallery_html(images: list[tuple[str, str, str]]) -> str:
    """A ``<figure>`` of (url, title, caption) images; "" for none."""
    if not images:
        return ""
    items = []
    for url, title, caption in images:
        image = f'<img src="{html.escape(url)}" alt="{html.escape(title or caption)}">'
        if caption:
            items.append(f"<figure>{image}<figcaption>{html.escape(caption, quote=False)}</figcaption></figure>")
        else:
            items.append(image)
    return f'<figure class="gallery">{"".join(items)}</figure>'


def _media(kind: str, attrs: dict[str, str]) -> str | None:
    """``[audio]``/``[video]``: a player with a link to the file, as WordPress's
    fallback for players that cannot play it."""
    url = attrs.get("src") or next((attrs[ext] for ext in _MEDIA_EXTENSIONS[kind] if attrs.get(ext)), "")
    if not _HTTP_URL.match(url):
        return None
    safe = html.escape(url)
    return f'<{kind} controls src="{safe}"><a href="{safe}">{safe}</a></{kind}>'


def _other_shortcode(match: re.Match[str], unknown: list[str]) -> str:
    name = match["name"]
    if not is_shortcode(name) or (match["close"] and (match["attrs"] or match["self"])):
        return match.group(0)
    if match["outer"] and match["outer_end"]:
        # [[gallery]] is how WordPress writes a literal "[gallery]".
        return match.group(0)[1:-1]
    if not match["close"]:
        attrs = _attributes(match["attrs"])
        if name == "gallery":
            return GALLERY_PLACEHOLDER.format(ids=html.escape(attrs.get("ids") or attrs.get("include") or ""))
        if name in _MEDIA_EXTENSIONS and (player := _media(name, attrs)) is not None:
            return player
    if match["close"] and name in _MEDIA_EXTENSIONS or name in ("caption", "wp_caption", "embed"):
        return ""  # the closing half of a converted player, or a caption or embed never closed
    if name not in unknown:
        unknown.append(name)
    return match.group(0)


def expand_shortcodes(text: str, unknown: list[str] | None = None) -> str:
    """``[caption]`` → ``<figure>``, ``[embed]`` → a link, ``[audio]``/``[video]``
    → players, ``[gallery]`` → a placeholder; other shortcodes are kept as
    written, their names added to ``unknown``.

    ``[[name]]`` stays as the literal ``[name]``; brackets that are not a
    shortcode are left alone.

    >>> expand_shortcodes('See [1] and [su_note]this[/su_note].')
    'See [1] and [su_note]this[/su_note].'
    """
    if "[" not in text:
        return text
    found = unknown if unknown is not None else []
    text = _replace_pairs(text, _CAPTION_OPEN, _shortcode_end, _caption, ignore_case=False)
    text = _replace_pairs(text, _EMBED_OPEN, _shortcode_end, _embed, ignore_case=False)
    return _SHORTCODE.sub(lambda m: _other_shortcode(m, found), text)


def _autoembed(text: str) -> str:
    """A URL alone on its line or in its paragraph, which WordPress would embed, as a link."""
    text = _BARE_URL_LINE.sub(lambda m: _link(html.unescape(m[1])), text)
    return _BARE_URL_PARAGRAPH.sub(lambda m: m[1] + _link(html.unescape(m[2])) + m[3], text)


def render_content(raw: str, *, unknown: list[str] | None = None) -> str:
    """The HTML WordPress would show for a post's stored ``content:encoded``;
    the names of shortcodes kept as written are added to ``unknown``."""
    # Block-editor posts (WordPress 5+) are stored as finished HTML; WordPress
    # itself turns wpautop off for them.
    blocks = "<!-- wp:" in raw
    text = _without_comments(raw.replace("\r\n", "\n").replace("\r", "\n"))
    text = _outside_pre(text, lambda part: expand_shortcodes(part, unknown))
    text = _outside_pre(text, _autoembed)
    if blocks:
        # Removing the block delimiters left runs of blank lines behind.
        text = _outside_pre(text, lambda part: re.sub(r"\n\s*\n", "\n", part))
    else:
        text = autop(text)
    return xml_safe(text.strip())


_BLOCK_BOUNDARY = re.compile(rf"{_BLOCK_TAG}|<br\s*/?>", re.I)
_BLOCK_TAG_RE = re.compile(_BLOCK_TAG, re.I)


def _space(match: re.Match[str], inner: str, whole: str) -> str:
    return " "


def _without_code(fragment: str) -> str:
    """``fragment`` without comments, scripts and styles: markup that is not text."""
    return _replace_pairs(_without_comments(fragment), _SCRIPT_STYLE_OPEN, _closing_tag, _space)


def plain_text(fragment: str) -> str:
    """The words of an HTML fragment on one line (tags dropped, entities decoded)."""
    text = _ANY_TAG.sub("", _BLOCK_BOUNDARY.sub(" ", _without_code(fragment)))
    return one_line(xml_safe(html.unescape(text)))


def plain_paragraphs(fragment: str) -> tuple[str, ...]:
    """Plain-text paragraphs of comment-style HTML: blank lines and ``<p>`` split them."""
    text = _BLOCK_TAG_RE.sub("\n\n", _without_code(fragment.replace("\r\n", "\n")))
    text = _ANY_TAG.sub("", _BR.sub("\n", text))
    paragraphs = (one_line(xml_safe(html.unescape(p))) for p in re.split(r"\n\s*\n", text))
    return tuple(p for p in paragraphs if p)
