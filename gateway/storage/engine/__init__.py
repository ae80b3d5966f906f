"""The embedded engine's internals: MongoDB wire protocol, commands, indexes and durability."""
