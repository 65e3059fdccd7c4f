"""Layer 5, front ends: the command line, the demo, notebook widgets, and (later) the pytest plugin."""
