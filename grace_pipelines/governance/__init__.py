"""Governance: consent policy and its ledger records, purge planning, the credential vault, and
the audit log (log, secret redaction, forensics, anchor). Builds on db/; no Dagster."""
