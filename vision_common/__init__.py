"""Helpers the three model packages share (``mrcnn``, ``unet``, ``localization``).

Holds only code that would otherwise be repeated in each of them; it imports none of them, so
each model package still installs and runs alone.
"""
