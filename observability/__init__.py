"""Reading the stack's traces back: the span store, the analysis, the reports.

A plain package with a management command (`python manage.py traces ...`): no
models, no views, no database. It reads spans; it never imports a service's code.
"""
