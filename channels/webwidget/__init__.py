"""The website chat widget channel."""
