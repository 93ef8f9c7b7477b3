"""The Redis backend (`backend`), its Lua scripts (`lua/`, assembled by `lua_helpers`),
and the embedded default on an in-process fakeredis (`memory`)."""
