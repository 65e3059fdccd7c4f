"""Layer 5, front ends: the command line, the demo, and (later) widgets and the pytest plugin."""
