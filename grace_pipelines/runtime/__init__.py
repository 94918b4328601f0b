"""Runtime: running Grace's jobs on the Dagster instance of a GRACE_HOME from the Python API and
the CLI (instance config, in-process execution, crash recovery). The facade's way to Dagster,
so it never reaches into sensors or assets."""
