"""Retention: pure decisions (``rules``), the job that applies them (``apply``), legal holds, approved
changes and disposals."""
