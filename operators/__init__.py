"""The operator side: presence, routing, and the operator bot."""
