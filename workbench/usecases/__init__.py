"""Use cases: one function per verb, called by both the CLI command and the screen.

Each takes the composition root (`workbench.wiring.Services`) first, then keyword arguments, an
optional progress callback and cancel token, and returns a typed result. The checks of a verb and
the order of its service calls live here, so the two front-ends cannot disagree. No Textual, no
click: the front-ends phrase prompts, progress and hints for their own surface.
"""
