"""pytest plugin (entry point ``btar``): collects btar scenario files as test items.

Placeholder until the simulator lands; it registers nothing yet.
"""
