"""Background work: one registry of tasks, and the three ways they run (in-process, Celery worker, scheduler).

Each feature keeps its tasks in its own ``<feature>/tasks.py`` and registers them with
``registry.task``; ``registry.discover()`` imports every such module, for the API process, the
worker and the scheduler alike. Feature code never imports the Celery app.
"""
