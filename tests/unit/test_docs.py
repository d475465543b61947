"""The documents agree with the tree (docs/architecture.md, "Layers"): every relative link of the
README and docs/ resolves, every module the layer table and the engine's module map name exists,
every module is in the layer table, and every citation of a document's section names a heading
that exists. Each failure names what is missing, so the fix is a line of a document."""

from __future__ import annotations

import ast
import re
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]
ARCHITECTURE = ROOT / "docs" / "architecture.md"
LAYER_TABLE_HEADING = "Every module, layer by layer"
PACKAGES = ("webhookapp", "workers")

FENCE = re.compile(r"^(```|~~~).*?^\1\s*$", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", re.MULTILINE)
# docs/architecture.md, "Scale" and "Security"; the section names may run onto the next line of a
# docstring or a comment.
CITATION = re.compile(
    r"(?:docs/)?(?P<doc>[a-z_]+\.md),\s*(?P<names>\"[^\"\n]+\"(?:(?:\s|#|//)*(?:,|and)(?:\s|#|//)*\"[^\"\n]+\")*)"
)
CITED_FILES = ("*.py", "*.html", "*.js", "*.css", "*.j2", "*.cfg", "*.toml", "Makefile")


def without_code(markdown: str) -> str:
    """The text with fenced blocks and code spans blanked: a link or heading inside code is code."""
    markdown = FENCE.sub("", markdown)
    return CODE_SPAN.sub("``", markdown)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lower case, punctuation removed (letters,
    digits, ``-``, ``_`` and spaces kept), spaces turned into hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text stays
    text = re.sub(r"[`*]", "", text).strip().lower()
    kept = "".join(ch for ch in text if ch in "-_ " or unicodedata.category(ch)[0] in "LN")
    return kept.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every anchor of a markdown file, duplicates numbered as GitHub numbers them."""
    seen: dict[str, int] = {}
    found = set()
    for match in HEADING.finditer(FENCE.sub("", path.read_text(encoding="utf-8"))):
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def headings(path: Path) -> set[str]:
    """The text of every heading, as docstrings cite them."""
    return {match.group(2).strip() for match in HEADING.finditer(FENCE.sub("", path.read_text(encoding="utf-8")))}


def broken_links(document: Path) -> list[str]:
    """The relative links of one document that name no file, or no heading of the file they name."""
    broken = []
    for target in LINK.findall(without_code(document.read_text(encoding="utf-8"))):
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) or target.startswith("//"):
            continue  # http:, https:, mailto: - not a file of the repo
        file_part, _, anchor = target.partition("#")
        linked = (document.parent / file_part).resolve() if file_part else document
        where = f"{document.relative_to(ROOT)}: ({target})"
        if not linked.exists():
            broken.append(f"{where}: no file {linked.relative_to(ROOT) if linked.is_relative_to(ROOT) else linked}")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{where}: no heading with the anchor #{anchor} in {linked.relative_to(ROOT)}")
    return broken


def test_every_relative_link_resolves() -> None:
    broken = [problem for document in DOCUMENTS if document.exists() for problem in broken_links(document)]
    assert not broken, "Links that lead nowhere:\n" + "\n".join(broken)


def test_slugs_follow_github() -> None:
    assert slug("How delivery works, and why nothing is lost") == "how-delivery-works-and-why-nothing-is-lost"
    assert slug("Rules for a webhook's fields") == "rules-for-a-webhooks-fields"
    assert slug("`GET /public/v1/events`") == "get-publicv1events"
    assert slug("[0.2.0] - 2026-12-06") == "020---2026-12-06"


def layer_table_modules() -> list[str]:
    """The paths the module column of the layer table names: a package ends with ``/``."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    marker = f"### {LAYER_TABLE_HEADING}\n"
    assert marker in text, f'docs/architecture.md has no heading "{LAYER_TABLE_HEADING}" holding the layer table'
    section = re.split(r"^#{1,3} ", text.split(marker, 1)[1], maxsplit=1, flags=re.MULTILINE)[0]
    named = []
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 3 or set(cells[1]) <= set("-: "):
            continue  # not a row, or the header's rule
        named += re.findall(r"`([^`]+)`", cells[1])
    assert named, "The layer table in docs/architecture.md names no module"
    return named


def actual_modules() -> set[str]:
    """Every module of the application and the worker entry point, as a path from the root."""
    return {
        path.relative_to(ROOT).as_posix()
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if "__pycache__" not in path.parts
    }


def as_file(name: str) -> str:
    """The file a named module or package is: a package stands for its ``__init__.py``."""
    return f"{name}__init__.py" if name.endswith("/") else name


def test_layer_table_names_modules_that_exist() -> None:
    missing = [name for name in layer_table_modules() if not (ROOT / as_file(name)).is_file()]
    assert not missing, "The layer table of docs/architecture.md names modules that do not exist: " + ", ".join(missing)


def test_every_module_is_in_the_layer_table() -> None:
    named = {as_file(name) for name in layer_table_modules()}
    unnamed = sorted(actual_modules() - named)
    assert not unnamed, (
        f'Modules missing from the layer table of docs/architecture.md ("{LAYER_TABLE_HEADING}"): ' + ", ".join(unnamed)
    )


def engine_map() -> list[str]:
    """The dotted names the module map of ``webhookapp/engine/__init__.py`` names."""
    docstring = ast.get_docstring(ast.parse((ROOT / "webhookapp/engine/__init__.py").read_text(encoding="utf-8")))
    assert docstring, "webhookapp/engine/__init__.py has lost its module map"
    return re.findall(r":mod:`([\w.]+)`", docstring)


def module_file(dotted: str) -> Path | None:
    """The file of a dotted module name, without importing it, or None."""
    base = ROOT.joinpath(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def test_engine_map_names_modules_that_exist() -> None:
    names = engine_map()
    missing = [name for name in names if not name.startswith("webhookapp.engine") or module_file(name) is None]
    assert not missing, "The module map of webhookapp/engine/__init__.py names what does not exist: " + ", ".join(
        missing
    )


def test_every_engine_module_is_in_the_engine_map() -> None:
    mapped = {module_file(name) for name in engine_map()}
    unmapped = sorted(
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "webhookapp/engine").rglob("*.py")
        if "__pycache__" not in path.parts and path != ROOT / "webhookapp/engine/__init__.py" and path not in mapped
    )
    assert not unmapped, "Engine modules missing from the module map of webhookapp/engine/__init__.py: " + ", ".join(
        unmapped
    )


def cited_sources() -> list[Path]:
    """The files that may cite a document's section: code, templates, styles, build files."""
    skip = {".git", ".venv", "node_modules", "__pycache__", "instance"}
    return sorted(
        path
        for pattern in CITED_FILES
        for path in ROOT.rglob(pattern)
        if not skip.intersection(path.relative_to(ROOT).parts)
    )


def test_every_cited_section_exists() -> None:
    known: dict[str, set[str]] = {}
    wrong = []
    for source in cited_sources():
        for match in CITATION.finditer(source.read_text(encoding="utf-8", errors="replace")):
            document = ROOT / "docs" / match["doc"]
            if not document.exists():
                continue  # README.md, CHANGELOG.md: a citation of the door names no section
            titles = known.setdefault(match["doc"], headings(document))
            for name in re.findall(r"\"([^\"\n]+)\"", match["names"]):
                if name not in titles:
                    wrong.append(f'{source.relative_to(ROOT)}: docs/{match["doc"]}, "{name}"')
    assert not wrong, "Citations of sections that do not exist:\n" + "\n".join(wrong)
