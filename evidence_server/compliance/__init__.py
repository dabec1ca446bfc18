"""The compliance engine (R8, R9): rules over custody facts, flags for legal-affairs review, figures.

``facts`` holds the plain data the rules read, ``rules`` and ``access`` the rules as pure functions,
``gather`` builds the facts from the database in set-based queries, ``service`` scans and keeps the
flags (one per natural key), ``review`` is the legal-affairs workflow, ``dashboard`` and ``reports``
the figures and the evaluation report.
"""
