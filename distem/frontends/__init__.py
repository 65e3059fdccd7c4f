"""Layer 5, front ends: the command line (``cli``), the demo, notebook widgets, the pytest plugin."""
