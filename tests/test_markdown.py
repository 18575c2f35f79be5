"""The coach's Markdown becomes safe HTML on the server (issue 15, item 14)."""

from __future__ import annotations

from agent.web.rendering import markdown_html


def test_markdown_in_a_reply_cannot_carry_html_or_script() -> None:
    out = markdown_html("**bold** `code` <script>alert(1)</script> <img src=x onerror=alert(1)>"
                        " [link](javascript:alert(1)) [ok](https://example.com)")
    assert "<strong>bold</strong>" in out and "<code>code</code>" in out
    assert "<script" not in out and "<img" not in out
    assert 'href="javascript:' not in out  # left as plain text, never a link
    assert "&lt;script&gt;" in out and '<a href="https://example.com">ok</a>' in out
