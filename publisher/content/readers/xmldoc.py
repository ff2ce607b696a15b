"""A WordPress export read safely as XML (the XML side of the WXR reader).

Entity declarations and external DTDs are refused (``check_prolog`` on the
bytes before any parser sees them, ``check_doctype`` on what the parser
found); control characters XML 1.0 forbids are removed; libxml2's syntax
errors are said in words a user can act on.
"""

from __future__ import annotations

import logging
import re

from lxml import etree

from publisher.errors import ContentError

log = logging.getLogger("publisher.readers.xml")

# C0 control characters XML 1.0 forbids. WordPress exports often carry a
# few pasted from word processors, and libxml2 stops at the first one; they
# are removed before parsing (xml_safe would remove them from the text anyway).
_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def line_of(data: bytes, needle: bytes) -> int:
    at = data.find(needle)
    return data.count(b"\n", 0, at) + 1 if at >= 0 else 1


def check_doctype(root: etree._Element, data: bytes, path: str) -> None:
    """Refuse entity declarations and external DTDs: WordPress writes neither."""
    info = root.getroottree().docinfo
    dtd = info.internalDTD
    entities = [e.name for e in dtd.iterentities()] if dtd is not None else []
    if entities or info.system_url or info.public_id:
        raise doctype_refused(path, line_of(data[:65536], b"<!DOCTYPE"), entities)


def doctype_refused(path: str, line: int, entities: list[str]) -> ContentError:
    what = f"declares entities ({', '.join(entities[:3])})" if entities else "refers to an external DTD"
    return ContentError(path, line, f"{what}; a WordPress export has no DTD, and entities are never expanded")


_DOCTYPE = re.compile(rb"<!DOCTYPE\s+[^\s\[>]+(\s+(?:SYSTEM|PUBLIC)\b)?")
_ENTITY = re.compile(rb"<!ENTITY\s+(?:%\s+)?([^\s>]+)")


def check_prolog(data: bytes, path: str) -> None:
    """``_check_doctype`` on the bytes before the document's first element,
    before any parser sees them: a parser may choke on what the entities
    would expand to (some libxml2 and lxml versions do, even when told not
    to expand them) before it says what the document declares."""
    head = data[:65536]
    doctype = _DOCTYPE.search(head)
    if doctype is None or head.find(b"<rss", 0, doctype.start()) >= 0:
        return
    entities = [name.decode("utf-8", "replace") for name in _ENTITY.findall(head, doctype.end())]
    if entities or doctype.group(1):
        raise doctype_refused(path, head.count(b"\n", 0, doctype.start()) + 1, entities)


def syntax_reason(exc: etree.XMLSyntaxError) -> str:
    message = re.sub(r", line \d+, column (\d+)$", r" (column \1)", exc.msg or str(exc))
    depth = re.match(r"Excessive depth in document: (\d+)", message)
    if depth:  # libxml2's limit, even with huge_tree; its advice to raise it does not apply
        where = re.search(r"\(column \d+\)", message)
        return f"elements nested more than {depth.group(1)} levels deep{' ' + where.group(0) if where else ''}"
    if message.startswith(("Invalid bytes in character encoding", "Input is not proper UTF-8")):
        where = re.search(r"\(column \d+\)", message)
        return f"not valid UTF-8{' ' + where.group(0) if where else ''}; save the export as UTF-8"
    return f"not well-formed XML: {message}"


def without_control_bytes(data: bytes) -> bytes:
    if b"\x00" in data[:4]:  # UTF-16 or UTF-32: NUL bytes belong to the encoding
        return data
    if _CONTROL_BYTES.search(data) is None:
        return data
    log.debug("removing control characters XML forbids")
    return _CONTROL_BYTES.sub(b"", data)
