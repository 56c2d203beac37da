"""Pure domain logic: values in, decisions out, no I/O and no event loop.

Every function that depends on the time takes ``now`` as a parameter so the rules
can be tested table-driven without clocks or sleeps.
"""
