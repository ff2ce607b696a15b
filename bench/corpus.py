"""A generated corpus of Markdown posts for the benchmarks: deterministic, realistic.

Posts of 1–6 KB (most near 2.7 KB, the size the issue quotes) with what
blog posts hold: headings, paragraphs with inline links, emphasis and
code, fenced code blocks, images (relative and absolute), block quotes,
lists, the odd table, and text in several scripts (accents, Greek, CJK,
Arabic, emoji). The same posts can be written for publisher (YAML front
matter) and for Pelican (its ``Key: value`` metadata), so both tools build
the same content.

    paths = write_corpus(Path("/tmp/posts"), 1000)                 # publisher
    write_corpus(Path("/tmp/pelican/content"), 1000, flavour="pelican")
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

_WORDS = (
    "the of and to in is that for it as was with be by on not he this are or his from at which but have an they "
    "you were her she there been one all we their has would when if so what out up said about into than them can "
    "only other new some could time these two may then do first any my now such like our over man me even most "
    "made after also did many before must through back years where much your way well down should because each "
    "just those people how too little state good very make world still own see men work long get here between "
    "both life being under never day same another know while last might us great old year off come since against "
    "go came right used take three ceasefire ministry report talks sources officials government election network "
    "server latency throughput parser database kernel memory feed reader publisher newsletter subscriber digest"
).split()
_UNICODE = (
    "Søren Kierkegaard", "naïve café", "Ελληνικά", "日本語のテキスト", "中文内容", "العربية", "Größe", "façade",
    "😀 emoji", "Zürich", "São Paulo", "Dvořák", "Łódź", "smörgåsbord", "“curly quotes”", "em—dash", "½ and ¾",
)
_TAGS = (
    "python", "feeds", "email", "politics", "middle-east", "tech", "opinion", "links", "news", "rust", "databases",
    "c++", "ünïcode", "media", "economy", "climate", "security", "privacy", "web", "open-source",
)
_LANGS = ("python", "sql", "javascript", "rust", "bash", "")
_CODE = {
    "python": 'def handler(event):\n    items = [x for x in event["items"] if x]\n    return {"count": len(items)}\n',
    "sql": "SELECT id, title FROM posts\n WHERE published < now()\n ORDER BY published DESC LIMIT 20;\n",
    "javascript": "const feed = await fetch('/feed.json').then(r => r.json());\nconsole.log(feed.items.length);\n",
    "rust": 'fn main() {\n    let v: Vec<u32> = (0..10).collect();\n    println!("{:?} <&>", v);\n}\n',
    "bash": "for f in posts/*.md; do\n  wc -c \"$f\"\ndone | sort -n | tail -3\n",
    "": "plain preformatted text\n  with indentation & <angle brackets>\n",
}
_AUTHORS = ("Editor", "Ann O'Brien", "Søren Ek", "李华")


@dataclass(frozen=True)
class CorpusPost:
    stem: str
    title: str
    date: datetime
    tags: tuple[str, ...]
    author: str
    body: str


def _sentence(rng: random.Random, words: int) -> str:
    chosen = [rng.choice(_WORDS) for _ in range(words)]
    if rng.random() < 0.35:
        chosen[rng.randrange(len(chosen))] = rng.choice(_UNICODE)
    if rng.random() < 0.3:
        i = rng.randrange(len(chosen))
        chosen[i] = f"[{chosen[i]}](https://example.com/{rng.choice(_WORDS)}/{rng.randrange(10_000)})"
    if rng.random() < 0.2:
        i = rng.randrange(len(chosen))
        chosen[i] = f"`{chosen[i]}()`"
    if rng.random() < 0.2:
        i = rng.randrange(len(chosen))
        chosen[i] = f"*{chosen[i]}*"
    text = " ".join(chosen)
    return text[0].upper() + text[1:] + "."


def _paragraph(rng: random.Random) -> str:
    return " ".join(_sentence(rng, rng.randint(8, 22)) for _ in range(rng.randint(2, 5)))


def _body(rng: random.Random, target: int, n: int) -> str:
    blocks: list[str] = []
    size = 0
    while size < target:
        roll = rng.random()
        if roll < 0.55:
            block = _paragraph(rng)
        elif roll < 0.65:
            lang = rng.choice(_LANGS)
            block = f"```{lang}\n{_CODE[lang]}```"
        elif roll < 0.72:
            if rng.random() < 0.5:
                block = f"![{rng.choice(_UNICODE)}](images/{n}-{rng.randrange(9)}.jpg)"
            else:
                block = f"![A chart](https://cdn.example.com/img/{n}.png \"Chart {n}\")"
        elif roll < 0.80:
            block = "> " + _paragraph(rng)
        elif roll < 0.88:
            block = "\n".join(f"- {_sentence(rng, rng.randint(3, 9))}" for _ in range(rng.randint(2, 5)))
        elif roll < 0.93:
            block = f"## {_sentence(rng, rng.randint(2, 6)).rstrip('.')}"
        elif roll < 0.96:
            block = "| item | value |\n| --- | --- |\n" + "\n".join(
                f"| {rng.choice(_WORDS)} | {rng.randrange(1000)} |" for _ in range(3)
            )
        else:
            block = f"See [the archive](../archive/{n}/) and [the source](https://github.com/example/{n}) for more."
        blocks.append(block)
        size += len(block.encode("utf-8")) + 2
    return "\n\n".join(blocks) + "\n"


def generate(count: int, seed: int = 8) -> list[CorpusPost]:
    """``count`` posts, the same for the same arguments; three a day from 2015, oldest first."""
    rng = random.Random(seed)
    start = datetime(2015, 1, 1, 8, 0, tzinfo=timezone.utc)
    posts = []
    for n in range(count):
        target = min(6000, max(900, int(rng.lognormvariate(7.85, 0.35))))  # median ≈ 2.6 KB
        title = _sentence(rng, rng.randint(4, 10)).rstrip(".").replace("`", "").replace("*", "")
        title = title.split("](")[0].replace("[", "")
        posts.append(
            CorpusPost(
                stem=f"post-{n:05d}",
                title=title,
                date=start + timedelta(hours=8 * n, minutes=rng.randrange(400)),
                tags=tuple(sorted(rng.sample(_TAGS, rng.randint(1, 3)))),
                author=rng.choice(_AUTHORS),
                body=_body(rng, target, n),
            )
        )
    return posts


def _yaml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def publisher_file(post: CorpusPost) -> str:
    tags = ", ".join(_yaml_string(t) for t in post.tags)
    return (
        "---\n"
        f"title: {_yaml_string(post.title)}\n"
        f"date: {post.date.isoformat()}\n"
        f"tags: [{tags}]\n"
        f"author: {_yaml_string(post.author)}\n"
        "---\n\n" + post.body
    )


def pelican_file(post: CorpusPost) -> str:
    return (
        f"Title: {post.title}\n"
        f"Date: {post.date:%Y-%m-%d %H:%M}\n"
        f"Tags: {', '.join(post.tags)}\n"
        f"Author: {post.author}\n"
        f"Slug: {post.stem}\n\n" + post.body
    )


def write_corpus(folder: Path, count: int, *, flavour: str = "publisher", seed: int = 8) -> list[Path]:
    """Write the corpus's posts as ``folder/post-NNNNN.md``; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    render = publisher_file if flavour == "publisher" else pelican_file
    paths = []
    for post in generate(count, seed):
        path = folder / f"{post.stem}.md"
        path.write_text(render(post), encoding="utf-8")
        paths.append(path)
    return paths
