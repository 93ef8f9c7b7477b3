"""Tools that are clients of a bridge, not the server: reached through ``python -m bridge <tool>``.

Serving imports none of them (`bridge.cli` loads a tool's command when it is invoked).
"""
