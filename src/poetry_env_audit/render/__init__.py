"""Renderers: one module per output format, each a pure function of a Report.

``formats`` names the formats; ``text`` and ``json`` render the report;
``annotations`` turns findings into CI annotations, which ``github`` and
``azure`` write in their system's syntax; ``gitlab`` has the section markers;
``compose`` puts the pieces together for a format, for ``poetry env-audit``
and the install guard alike; ``guard`` has the guard's own lines.
"""
