"""Readers for the bookmark exports people have: browsers and read-it-later services.

Each reader maps its entries onto the common record fields (see ``_common``)
and keeps every original field; ``sources/formats.py`` lists them all.
"""
