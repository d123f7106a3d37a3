"""Reasoning text kept out of the reply (issue 15 item 9).

Reasoning models put their thinking in ``reasoning_content`` (vLLM, DeepSeek, LM Studio) or
``reasoning`` (OpenRouter), or inline as ``<think>…</think>`` (Qwen, DeepSeek-R1 on Ollama and
llama.cpp). The customer never reads it and it is never stored as the reply; the completion keeps
it in ``reasoning`` for the record and replay.
"""

from __future__ import annotations

import re

OPEN, CLOSE = "<think>", "</think>"
_BLOCK = re.compile(r"<think>(.*?)(?:</think>|\Z)", re.DOTALL)


def split_reasoning(text: str) -> tuple[str, str]:
    """(reply, reasoning) of a whole text: every ``<think>`` block (an unclosed one runs to the
    end) is reasoning. A stray ``</think>`` with no opening (some templates send the opening in
    the prompt) ends reasoning that started with the text."""
    if CLOSE in text and OPEN not in text.split(CLOSE, 1)[0]:
        before, _, text = text.partition(CLOSE)
        prefix = [before]
    else:
        prefix = []
    thoughts = prefix + [match.group(1) for match in _BLOCK.finditer(text)]
    reply = _BLOCK.sub("", text)
    return reply.lstrip() if thoughts else reply, "\n".join(t.strip() for t in thoughts).strip()


class ThinkFilter:
    """Streamed text with ``<think>`` blocks removed as it arrives; a tag split across chunks
    is held back until it is known to be one."""

    def __init__(self) -> None:
        self.inside = False
        self.started = False  # any visible text yet (leading whitespace after a block is dropped)
        self._pending = ""
        self.reasoning: list[str] = []

    def feed(self, text: str) -> str:
        data = self._pending + text
        self._pending = ""
        out: list[str] = []
        while data:
            tag = CLOSE if self.inside else OPEN
            index = data.find(tag)
            if index < 0:
                keep = _partial_suffix(data, tag)
                chunk, self._pending = data[: len(data) - keep], data[len(data) - keep :]
                self._take(chunk, out)
                break
            self._take(data[:index], out)
            self.inside = not self.inside
            data = data[index + len(tag) :]
        return "".join(out)

    def flush(self) -> str:
        rest, self._pending = self._pending, ""
        out: list[str] = []
        self._take(rest, out)
        return "".join(out)

    def _take(self, chunk: str, out: list[str]) -> None:
        if not chunk:
            return
        if self.inside:
            self.reasoning.append(chunk)
            return
        if not self.started:
            chunk = chunk.lstrip()
            if not chunk:
                return
            self.started = True
        out.append(chunk)


def _partial_suffix(data: str, tag: str) -> int:
    """Length of the longest end of ``data`` that is the start of ``tag``."""
    for size in range(min(len(tag) - 1, len(data)), 0, -1):
        if tag.startswith(data[-size:]):
            return size
    return 0
