"""A chat turn from receipt to reply (SPEC §3–§6).

- ``engine``: the async story of a turn (lock, claim, route, model, tools, reply, resume);
- ``steps``: the database writes it makes, each a typed synchronous service;
- ``setup``: the agents and tools it routes to, and who approves a call;
- ``prompt``: what the model sees (pure);
- ``plan``: the turn's plan and its vocabularies (pure).
"""
