"""B2MML plumbing: safe parsing, the official V0700 XSD (shipped, compiled once), readable errors.

The B2MML documents and the mapping are described in `mes_edge.erp.b2mml`.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

log = logging.getLogger(__name__)

NS = "http://www.mesa.org/xml/B2MML"
#: lxml's Clark notation prefix of B2MML element names.
B = "{" + NS + "}"

SCHEMA_DIR_ENV = "MES_B2MML_XSD_DIR"
#: The V0700 schemas this code needs, shipped as package data with MESA's licence (see NOTICE).
PACKAGED_SCHEMA_DIR = Path(__file__).resolve().parent / "b2mml_xsd"
SCHEDULE_XSD = "B2MML-OperationsSchedule.xsd"
PERFORMANCE_XSD = "B2MML-OperationsPerformance.xsd"

#: Larger documents are refused before parsing; a schedule of a few hundred orders is ~1 MB.
MAX_DOCUMENT_BYTES = 5 * 1024 * 1024
#: An error report an integrator can read, not every repetition.
MAX_PROBLEMS = 50
# A compiled schema keeps the error log of its last run on itself: validating from two
# threads at once (the API may parse in a worker thread) would mix their errors.
_VALIDATE_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class B2mmlProblem:
    """One thing wrong with a document: where (XPath-like) and what."""

    location: str
    message: str
    line: int | None = None

    def as_dict(self) -> dict[str, object]:
        """The problem as JSON for an API error body."""
        return {"location": self.location, "message": self.message, "line": self.line}


class B2mmlError(Exception):
    """A B2MML document that cannot be accepted; `problems` says where and why."""

    def __init__(self, problems: list[B2mmlProblem]) -> None:
        self.problems = problems
        first = problems[0] if problems else B2mmlProblem("/", "invalid B2MML")
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"{first.location}: {first.message}{more}")


def schema_dir() -> Path | None:
    """The folder of the B2MML V0700 XSD files, or None when there is none.

    The schemas ship inside the package (`mes_edge/erp/b2mml_xsd`), so an installed service
    always validates. MES_B2MML_XSD_DIR may point at another copy (e.g. a newer patch of
    V0700); a value without the XSD files is ignored with a warning. None only for a broken
    installation that lost its package data (then a warning, and structural checks only).
    """
    configured = os.environ.get(SCHEMA_DIR_ENV)
    if configured:
        path = Path(configured)
        if (path / SCHEDULE_XSD).is_file() and (path / PERFORMANCE_XSD).is_file():
            return path
        _warn_once(f"{SCHEMA_DIR_ENV}={configured} has no {SCHEDULE_XSD} and "
                   f"{PERFORMANCE_XSD}: using the schemas shipped in the package")
    if (PACKAGED_SCHEMA_DIR / SCHEDULE_XSD).is_file():
        return PACKAGED_SCHEMA_DIR
    _warn_once(f"the B2MML XSD files are missing from {PACKAGED_SCHEMA_DIR} (a broken "
               "installation): B2MML documents get structural checks only, no XSD validation")
    return None


def schema_available() -> bool:
    """True when documents are validated against the official XSD (else structural checks only)."""
    return schema_dir() is not None


@functools.cache
def _warn_once(message: str) -> None:
    log.warning(message)


@functools.cache
def _compiled(folder: Path, name: str) -> etree.XMLSchema:
    # Compiling takes ~10 ms and the result is immutable: once per process and file.
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    return etree.XMLSchema(etree.parse(str(folder / name), parser))


def schema(name: str) -> etree.XMLSchema | None:
    """The compiled XSD `name` of the schema folder, or None without a schema folder."""
    folder = schema_dir()
    return None if folder is None else _compiled(folder, name)


def parse_document(xml: bytes, *, max_bytes: int = MAX_DOCUMENT_BYTES) -> etree._Element:
    """Parse untrusted bytes: bounded size, no DTD, no entities, no network.

    Raises B2mmlError for anything that is not a plain, well-formed XML document.
    """
    if not isinstance(xml, bytes | bytearray | memoryview):
        raise B2mmlError([B2mmlProblem("/", "the document must be bytes")])
    if len(xml) > max_bytes:
        raise B2mmlError([B2mmlProblem("/", f"document of {len(xml)} bytes exceeds the "
                                            f"limit of {max_bytes} bytes")])
    if not bytes(xml).strip():
        raise B2mmlError([B2mmlProblem("/", "empty document")])
    # resolve_entities=False: entities are never expanded (no billion laughs, no file reads);
    # libxml2 also stops entity amplification itself. huge_tree stays off (depth limits).
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             huge_tree=False, remove_pis=True, collect_ids=False)
    try:
        root = etree.fromstring(bytes(xml), parser)
    except etree.XMLSyntaxError as err:
        line = err.lineno if isinstance(err.lineno, int) else None
        raise B2mmlError([B2mmlProblem("/", f"not well-formed XML: {err.msg}", line)]) from err
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        # B2MML never needs a DTD; refusing it closes every entity trick at once.
        raise B2mmlError([B2mmlProblem("/", "a DOCTYPE (DTD, entities) is not allowed")])
    return root


def validate(root: etree._Element, xsd_name: str) -> None:
    """Validate against the official XSD when it is available; B2mmlError lists the violations."""
    compiled = schema(xsd_name)
    if compiled is None:
        return
    with _VALIDATE_LOCK:
        if compiled.validate(root):
            return
        entries = list(compiled.error_log)
    tree = root.getroottree()
    problems = [B2mmlProblem(_readable_path(tree, e.path), _short(e.message), e.line)
                for e in entries[:MAX_PROBLEMS]]
    raise B2mmlError(capped(problems, len(entries)))


def capped(problems: list[B2mmlProblem], total: int | None = None) -> list[B2mmlProblem]:
    """At most the first 50 problems, and a note of how many more there were."""
    total = len(problems) if total is None else total
    if total <= MAX_PROBLEMS:
        return problems
    return [*problems[:MAX_PROBLEMS], B2mmlProblem("/", f"... and {total - MAX_PROBLEMS} more")]


def local(el: etree._Element) -> str:
    """The element name without the namespace."""
    return etree.QName(el).localname


def location(el: etree._Element) -> str:
    """XPath-like location with local names, e.g. /OperationsSchedule/OperationsRequest[2]/ID."""
    steps = []
    node: etree._Element | None = el
    while node is not None:
        parent = node.getparent()
        name = local(node)
        if parent is None:
            steps.append(name)
        else:
            same = [c for c in parent if c.tag == node.tag]
            steps.append(f"{name}[{same.index(node) + 1}]" if len(same) > 1 else name)
        node = parent
    return "/" + "/".join(reversed(steps))


def _readable_path(tree: etree._ElementTree, path: str | None) -> str:
    # libxml2 reports /*/*[2]/*[1] for namespaced elements: resolve it to the element and
    # name its steps, so the API can say where the problem is in words.
    if not path:
        return "/"
    try:
        found = tree.xpath(path)
    except etree.XPathError:
        return path
    if isinstance(found, list) and found and isinstance(found[0], etree._Element):
        return location(found[0])
    return path


def _short(message: str) -> str:
    return re.sub(r"\{" + re.escape(NS) + r"\}", "", message).strip()
