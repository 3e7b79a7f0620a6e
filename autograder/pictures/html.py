"""A test's markdown output as safe html, with its picture inline (Gradescope's ``html`` format).

Gradescope renders a test's output in one format, so a test with a picture has its whole
message converted: every character of the message is escaped first, then the few markdown
forms the grader's messages use (code fences, inline code, bold, "- " lists, paragraphs) become
tags. Nothing a student's code put in a message can become markup.
"""
from __future__ import annotations

import html
import re

_INLINE_CODE = re.compile(r"`([^`\n]+)`")
_BOLD = re.compile(r"\*\*([^*\n]+)\*\*")


def markdown_to_html(text: str) -> str:
    """Escaped html of ``text`` (the subset of markdown described in the module doc)."""
    blocks, lines, in_code = [], [], False
    for line in text.split("\n"):
        if line.strip().startswith("```"):
            if in_code:
                blocks.append("<pre><code>" + html.escape("\n".join(lines)) + "</code></pre>")
                lines, in_code = [], False
            else:
                blocks += _paragraphs(lines)
                lines, in_code = [], True
            continue
        lines.append(line)
    blocks += (["<pre><code>" + html.escape("\n".join(lines)) + "</code></pre>"] if in_code
               else _paragraphs(lines))
    return "\n".join(blocks)


def with_picture(text: str, picture_base64: str, *, alt: str) -> str:
    """``text`` as html followed by the PNG (base64) as an inline image."""
    return (markdown_to_html(text) + f'\n<p><img alt="{html.escape(alt)}" '
            f'src="data:image/png;base64,{picture_base64}"></p>')


def _paragraphs(lines: list[str]) -> list[str]:
    blocks, current = [], []
    for line in lines + [""]:
        if line.strip():
            current.append(line)
            continue
        if current:
            blocks.append(_block(current))
            current = []
    return blocks


def _block(lines: list[str]) -> str:
    if all(line.startswith("- ") for line in lines):
        return "<ul>" + "".join(f"<li>{_inline(line[2:])}</li>" for line in lines) + "</ul>"
    return "<p>" + "<br>".join(_inline(line) for line in lines) + "</p>"


def _inline(text: str) -> str:
    escaped = html.escape(text)
    escaped = _INLINE_CODE.sub(r"<code>\1</code>", escaped)
    return _BOLD.sub(r"<strong>\1</strong>", escaped)
