"""Jekyll's Liquid and Hugo's shortcodes: converted into what they stand for,
or kept as written with one warning naming them."""

from __future__ import annotations

import pytest

from publisher.content.readers import ReadOptions
from publisher.content.readers.markdown import read_result
from publisher.content.readers.shortcodes import REF_PREFIX, convert_templates

SITE = "https://example.org/blog/"


def convert(text: str) -> tuple[str, list[str]]:
    body, warnings = convert_templates(text, "posts/a.md", SITE, first_line=1)
    return body, [w.reason for w in warnings]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{ site.url }}/x", "https://example.org/x"),
        ("{{ site.baseurl }}/x", "/blog/x"),
        ("{{site.url}}{{ site.baseurl }}/img.png", "https://example.org/blog/img.png"),
        ("{{ '/assets/a.png' | relative_url }}", "/blog/assets/a.png"),
        ('{{ "/feed.xml" | absolute_url }}', "https://example.org/blog/feed.xml"),
        ("{% raw %}{{ not }} {% this %}{% endraw %}", "{{ not }} {% this %}"),
        ("a{% comment %} gone {% endcomment %}b", "ab"),
        ("{% post_url 2010-07-21-name %}", REF_PREFIX + "2010-07-21-name"),
        ("{% link _posts/2016-07-26-name.md %}", REF_PREFIX + "_posts/2016-07-26-name.md"),
        ('{{< ref "posts/other.md" >}}', REF_PREFIX + "posts/other.md"),
        ('{{< relref "/posts/other" >}}', REF_PREFIX + "posts/other"),
        ("{{</* youtube abc */>}}", "{{< youtube abc >}}"),
        ("{{%/* notice */%}}", "{{% notice %}}"),
        ("{{< vimeo 146022717 >}}", '<p><a href="https://vimeo.com/146022717">Watch on Vimeo</a></p>'),
        (
            '{{< figure src="/img/a.png" alt="Cat" caption="A &quot;cat&quot;" link="https://e.org/" >}}',
            '<figure><a href="https://e.org/"><img src="/blog/img/a.png" alt="Cat"></a>'
            "<figcaption>A &amp;quot;cat&amp;quot;</figcaption></figure>",
        ),
    ],
)
def test_conversions(text: str, expected: str) -> None:
    assert convert(text) == (expected, [])


def test_highlight_blocks_become_fenced_code_in_both_syntaxes() -> None:
    body, warnings = convert("{% highlight python %}\nx = 1\n{% endhighlight %}\n{{< highlight go >}}\ny := 2\n{{< /highlight >}}")
    assert body == "\n```python\nx = 1\n```\n\n\n```go\ny := 2\n```\n"
    assert warnings == []


def test_a_fence_inside_highlighted_code_gets_a_longer_fence() -> None:
    body, _ = convert("{% highlight md %}\n```\ncode\n```\n{% endhighlight %}")
    assert body.strip().startswith("````md")


def test_youtube_is_a_linked_thumbnail_by_id_or_named_id() -> None:
    for text in ("{{< youtube w7Ft2ymGmfc >}}", '{{< youtube id="w7Ft2ymGmfc" title="A talk" >}}'):
        body, warnings = convert(text)
        assert '<a href="https://www.youtube.com/watch?v=w7Ft2ymGmfc">' in body
        assert 'src="https://i.ytimg.com/vi/w7Ft2ymGmfc/hqdefault.jpg"' in body
        assert warnings == []


def test_whatever_is_not_converted_stays_and_is_named_once_per_file_at_its_first_line() -> None:
    text = "Intro\n\n{% include a.html %}\n{% include b.html %}\n{{ page.title | upcase }}\n{{< gist x 1 >}}\n{{% notice %}}x{{% /notice %}}\n"
    body, warnings = convert_templates(text, "posts/a.md", SITE, first_line=5)
    assert body == text
    assert [str(w) for w in warnings] == [
        "posts/a.md:7: template syntax kept as text, not converted: "
        "{{< gist >}}, {{< notice >}}, {% include %}, {{ page.title }}"
    ]


def test_text_without_template_syntax_is_returned_as_is() -> None:
    text = "Braces {like this} and 50% off {not a tag}."
    assert convert(text) == (text, [])


def test_markdown_posts_are_converted_before_parsing_and_warned_with_file_lines() -> None:
    data = b"---\ntitle: T\n---\nText.\n\n{% include x.html %}\n"
    result = read_result(data, "posts/a.md", ReadOptions(site_url=SITE))
    assert "{% include x.html %}" in result.posts[0].content_html
    assert [str(w) for w in result.warnings] == [
        "posts/a.md:6: template syntax kept as text, not converted: {% include %}"
    ]
