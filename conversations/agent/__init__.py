"""The agent layer of a conversation: which agent and tool a message is for, what arguments it
carries, and how tool results turn into replies (SPEC §4, §5).

The modules here are pure logic without ORM imports, so they are tested with plain data:

- ``extraction``: entities in user text (order numbers, emails, amounts, codes, dates, a reason)
  and filling a tool's JSON Schema arguments from them and from conversation context;
- ``routing``: splitting a message into intents, scoring agents and tools, clarification and
  escalation requests;
- ``replies``: plain-language replies from tool results, questions for missing arguments,
  greeting and help text.

The offline backend (``conversations.llm.offline``) is built from these three.
"""
