"""roost's command line: one thin module per verb group, all logic lives in the Python API."""
