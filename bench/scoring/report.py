"""bench/scoring/results.md holds several benchmarks' sections: each run rewrites its own and
keeps the others."""

from __future__ import annotations

from pathlib import Path


def split_sections(text: str) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """The lines before the first `## ` heading, then each `## ` section (heading, its lines)."""
    head: list[str] = []
    sections: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("## "):
            sections.append((line.strip(), []))
        elif sections:
            sections[-1][1].append(line)
        else:
            head.append(line)
    return head, sections


def other_sections(path: Path, own: set[str]) -> list[str]:
    """The lines of the file's sections whose headings are not in `own` (none if no file)."""
    if not path.exists():
        return []
    _, sections = split_sections(path.read_text())
    lines: list[str] = []
    for heading, body in sections:
        if heading not in own:
            lines += [heading, *body]
    return lines


def write_section(path: Path, heading: str, lines: list[str]) -> None:
    """Replace the section `heading` of the file with `lines` (which start with it), or add
    it at the end; the rest of the file stays as it is."""
    head, sections = split_sections(path.read_text()) if path.exists() else ([], [])
    body = lines[1:] if lines and lines[0].strip() == heading else lines
    if any(h == heading for h, _ in sections):
        sections = [(h, [*body, ""] if h == heading else b) for h, b in sections]
    else:
        if sections and sections[-1][1] and sections[-1][1][-1].strip():
            sections[-1][1].append("")
        sections.append((heading, [*body, ""]))
    out = list(head)
    for h, b in sections:
        out += [h, *b]
    path.write_text("\n".join(out).rstrip("\n") + "\n")
