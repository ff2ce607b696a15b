"""Template syntax other tools leave in their posts: Jekyll's Liquid and Hugo's shortcodes.

A post written for Jekyll or Hugo holds more than Markdown: ``{% highlight
ruby %}``, ``{{ site.baseurl }}``, ``{{< youtube w7Ft2ymGmfc >}}``. Those
tools render them before the Markdown; so does ``convert_templates``, into
the Markdown or HTML they stand for:

- Liquid: ``{% highlight lang %}…{% endhighlight %}`` becomes a fenced code
  block, ``{% raw %}…{% endraw %}`` its text as written, ``{% comment %}``
  nothing; ``{% link path %}`` and ``{% post_url name %}`` link to that post;
  ``{{ site.url }}``, ``{{ site.baseurl }}`` and the ``relative_url`` and
  ``absolute_url`` filters resolve against ``[site] url``.
- Hugo: ``youtube``, ``vimeo``, ``figure``, ``ref``/``relref`` and
  ``highlight`` (in ``{{< >}}`` or ``{{% %}}``); ``{{</* x */>}}`` is the
  literal ``{{< x >}}``.

Anything else stays in the text as written, and the file gets one warning
naming what was kept, so nothing is published as template syntax silently.

Links to other posts are written as ``/.publisher-ref/<target>``:
``content.references`` points them at the post once every URL is known.

    body, warnings = convert_templates(text, "posts/a.md", "https://example.org/blog/", first_line=5)
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from urllib.parse import quote, urlsplit

from publisher.content.readers.metadata import ContentWarning

REF_PREFIX = "/.publisher-ref/"

_ATTRIBUTE = re.compile(r"""([\w-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|`([^`]*)`|(\S+))|"([^"]*)"|'([^']*)'|(\S+)""")


def ref_url(target: str) -> str:
    """The placeholder URL of a link to the post ``target`` names."""
    return REF_PREFIX + quote(target.strip().strip("\"'").lstrip("./"), safe="/#")


def _arguments(text: str) -> tuple[list[str], dict[str, str]]:
    """Positional and named arguments of a shortcode or tag."""
    positional: list[str] = []
    named: dict[str, str] = {}
    for match in _ATTRIBUTE.finditer(text):
        if match.group(1):
            named[match.group(1).lower()] = next(g for g in match.groups()[1:5] if g is not None)
        else:
            positional.append(next(g for g in match.groups()[5:] if g is not None))
    return positional, named


def _fence(language: str, code: str) -> str:
    longest = max((len(m) for m in re.findall(r"`{3,}", code)), default=2)
    ticks = "`" * max(3, longest + 1)
    return f"\n{ticks}{language}\n{code.strip(chr(10))}\n{ticks}\n"


def _escape(text: str) -> str:
    return html.escape(text, quote=True)


class _Converter:
    """One file's conversion: the site's URL, and what was kept as written."""

    def __init__(self, site_url: str):
        self.site_url = site_url.rstrip("/")
        self.base_path = urlsplit(site_url).path.rstrip("/")
        self.kept: dict[str, str] = {}  # what was kept -> a pattern that finds it in the original
        self.protected: list[str] = []

    def keep(self, name: str, pattern: str) -> None:
        self.kept.setdefault(name, pattern)

    def protect(self, text: str) -> str:
        """A stand-in for ``text`` that nothing after changes."""
        self.protected.append(text)
        return f"\x00{len(self.protected) - 1}\x00"

    def restore(self, text: str) -> str:
        return re.sub(r"\x00(\d+)\x00", lambda m: self.protected[int(m.group(1))], text)

    # -- Hugo ------------------------------------------------------------------

    def hugo_pair(self, match: re.Match[str]) -> str:
        name, args, inner = match["name"].lower(), match["args"] or "", match["inner"]
        if name == "highlight":
            positional, _ = _arguments(args)
            return self.protect(_fence(positional[0] if positional else "", inner))
        self.keep(f"{{{{< {name} >}}}}", r"\{\{[<%]\s*" + re.escape(match["name"]))
        return self.protect(match.group(0))

    def hugo_single(self, match: re.Match[str]) -> str:
        if match["literal"] is not None:
            return self.protect(match["open"] + match["literal"] + match["close"])
        name, args = match["name"].lower(), match["args"] or ""
        if name.startswith("/"):  # the end of a shortcode kept as written
            return self.protect(match.group(0))
        positional, named = _arguments(args)
        converted = self._hugo(name, positional, named)
        if converted is None:
            self.keep(f"{{{{< {name} >}}}}", r"\{\{[<%]\s*" + re.escape(match["name"]))
            return self.protect(match.group(0))
        return self.protect(converted)

    def _hugo(self, name: str, positional: list[str], named: dict[str, str]) -> str | None:
        first = named.get("id") or (positional[0] if positional else "")
        if name == "youtube" and re.fullmatch(r"[\w-]{6,20}", first):
            url = f"https://www.youtube.com/watch?v={first}"
            title = named.get("title") or "Watch on YouTube"
            thumb = f"https://i.ytimg.com/vi/{first}/hqdefault.jpg"
            return (
                f'<figure class="video"><a href="{url}"><img src="{thumb}" alt="{_escape(title)}"></a>'
                f'<figcaption><a href="{url}">{_escape(title)}</a></figcaption></figure>'
            )
        if name == "vimeo" and first.isdigit():
            url = f"https://vimeo.com/{first}"
            return f'<p><a href="{url}">{_escape(named.get("title") or "Watch on Vimeo")}</a></p>'
        if name == "figure" and named.get("src"):
            return self._figure(named)
        if name in ("ref", "relref") and first:
            return ref_url(first)
        return None

    def _figure(self, named: dict[str, str]) -> str:
        src = named["src"]
        if src.startswith("/") and not src.startswith("//"):
            src = self.base_path + src  # Hugo: under the site's base URL
        image = f'<img src="{_escape(src)}" alt="{_escape(named.get("alt") or named.get("caption") or "")}">'
        if named.get("link"):
            image = f'<a href="{_escape(named["link"])}">{image}</a>'
        caption = " ".join(_escape(named[k]) for k in ("title", "caption", "attr") if named.get(k))
        figcaption = f"<figcaption>{caption}</figcaption>" if caption else ""
        return f"<figure>{image}{figcaption}</figure>"

    # -- Liquid ----------------------------------------------------------------

    def liquid_block(self, match: re.Match[str]) -> str:
        name, args, inner = match["name"], match["args"] or "", match["inner"]
        if name == "raw":
            return self.protect(inner)
        if name == "comment":
            return ""
        positional, _ = _arguments(args)
        return self.protect(_fence(positional[0] if positional else "", inner))

    def liquid_tag(self, match: re.Match[str]) -> str:
        name, args = match["name"], (match["args"] or "").strip()
        if name in ("link", "post_url") and args:
            return self.protect(ref_url(args.split()[0]))
        self.keep(f"{{% {name} %}}", r"\{%-?\s*" + re.escape(name))
        return self.protect(match.group(0))

    def liquid_output(self, match: re.Match[str]) -> str:
        expression = " ".join(match["expr"].split())
        value = self._liquid_value(expression)
        if value is None:
            shown = expression.split("|")[0].strip()
            self.keep("{{ " + shown + " }}", r"\{\{-?\s*" + re.escape(shown))
            return self.protect(match.group(0))
        return self.protect(value)

    def _liquid_value(self, expression: str) -> str | None:
        if expression == "site.url":
            return self.site_url.removesuffix(self.base_path) if self.base_path else self.site_url
        if expression == "site.baseurl":
            return self.base_path
        filtered = re.fullmatch(r"""(['"])(.*?)\1\s*\|\s*(relative_url|absolute_url)""", expression)
        if filtered:
            path = self.base_path + "/" + filtered.group(2).lstrip("/")
            if filtered.group(3) == "absolute_url":
                root = self.site_url.removesuffix(self.base_path) if self.base_path else self.site_url
                return root + path
            return path
        return None


_HUGO_LITERAL = r"(?P<open>\{\{[<%])/\*(?P<literal>.*?)\*/(?P<close>[>%]\}\})"
_HUGO_SINGLE = re.compile(
    _HUGO_LITERAL + r"|\{\{[<%]\s*(?P<name>[\w./-]+)(?P<args>(?:[^>%]|[>%](?!\}\}))*?)\s*/?[>%]\}\}", re.S
)
_HUGO_PAIR = re.compile(
    r"\{\{[<%]\s*(?P<name>highlight)\b(?P<args>[^}]*?)[>%]\}\}(?P<inner>.*?)\{\{[<%]\s*/(?P=name)\s*[>%]\}\}",
    re.S | re.I,
)
_LIQUID_BLOCK = re.compile(
    r"\{%-?\s*(?P<name>raw|comment|highlight)\b(?P<args>[^%]*?)-?%\}(?P<inner>.*?)\{%-?\s*end(?P=name)\s*-?%\}",
    re.S,
)
_LIQUID_TAG = re.compile(r"\{%-?\s*(?P<name>\w+)(?P<args>.*?)-?%\}", re.S)
_LIQUID_OUTPUT = re.compile(r"\{\{-?(?P<expr>(?:(?!\}\}).)+?)-?\}\}", re.S)


def convert_templates(text: str, path: str, site_url: str, *, first_line: int) -> tuple[str, tuple[ContentWarning, ...]]:
    """``text`` with Liquid and Hugo shortcodes converted, and one warning
    (at the line of the first) naming everything kept as written."""
    if "{{" not in text and "{%" not in text:
        return text, ()
    converter = _Converter(site_url)
    steps: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
        (_HUGO_PAIR, converter.hugo_pair),
        (_HUGO_SINGLE, converter.hugo_single),
        (_LIQUID_BLOCK, converter.liquid_block),
        (_LIQUID_TAG, converter.liquid_tag),
        (_LIQUID_OUTPUT, converter.liquid_output),
    )
    original = text
    for pattern, replace in steps:
        text = pattern.sub(replace, text)
    text = converter.restore(text)
    if not converter.kept:
        return text, ()
    places = [m.start() for p in converter.kept.values() if (m := re.search(p, original))]
    line = first_line + original.count("\n", 0, min(places, default=0))
    names = ", ".join(converter.kept)
    return text, (ContentWarning(path, line, f"template syntax kept as text, not converted: {names}"),)
