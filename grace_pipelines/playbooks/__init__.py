"""Playbooks: recurring operational routines as YAML files (`playbooks/` at the repository
root, and `$GRACE_HOME/playbooks/`): checks with thresholds over Grace's state and actions on a
breach (alert, launch overdue work, re-run failed sources, rotate keys, purge, index upkeep).

model.py (the file format), loading.py (files, with line numbers in errors), context.py,
probes.py and probes_store.py (the metrics), actions.py, engine.py (one run, plain Python),
service.py (list, validate, run for the API) need no Dagster; dagster_defs.py and component.py
are the Dagster adapter. Import the modules themselves: this package's `__init__` stays empty so
that reading a file never imports Dagster.
"""
