"""Security layer: the static pickle walker, the restricted unpicklers and archive walkers.

Nothing here executes what a file carries: the walker only reads opcodes, and the
unpicklers resolve every global through the trust list before anything can call it.
"""
