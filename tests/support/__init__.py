"""Helpers the test modules share: ASGI servers on free ports, a recording webhook receiver."""
