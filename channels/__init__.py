"""Messenger adapters, one package per messenger; `channels.registry` finds them by name."""
