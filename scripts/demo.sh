#!/usr/bin/env bash
# `make demo`: three spoken notes become searchable answers, on the embedded defaults
# (SQLite, local LanceDB, bundled Whisper tiny.en and MiniLM), through the Dagster asset graph.
set -euo pipefail
FX=tests/fixtures
: "${GRACE_HOME:=.grace-demo}"
export GRACE_HOME
rm -rf "$GRACE_HOME"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "grace init ($GRACE_HOME)"
grace init

say "grace ingest --wait: two notes with consent sidecars, one meeting without"
grace ingest "$FX/standup.mp3" "$FX/groceries.ogg" "$FX/migration.wav" --wait

say "the meeting waits for consent; granting it releases the held work"
grace consent list --pending
grace consent grant migration.wav --party me --scope all --wait

ask() { say "Q: $1"; grace search "$1" -k 1; }
ask "When is the quarterly report due?"
ask "What do I need to pick up at the market?"
ask "Which database are we moving to?"

say "grace status, and the task manager's figures (grace status --htm)"
grace status
grace status --htm

say "privacy: everything at rest is sealed; the meeting's consent is withdrawn and it is purged"
grace keys status
grace consent revoke migration.wav --party me --scope all --wait
grace search "Which database are we moving to?" -k 1
grace audit verify
say "the control room's layered views (ops, orchestration, intent, dev), refreshed now"
grace layers

say "a playbook: HTM timing and sizing (SLA compliance, latency, queue, starvation), run now"
grace playbooks run htm_timing_and_sizing

printf '\nOpen the control room (asset groups ops, orchestration, intent and dev; see docs/control_room.md) with:\n  GRACE_HOME=%q make dev\n' "$GRACE_HOME"
printf 'Search, ask, play and decide in the web app: start it (make dev starts it too) with\n  GRACE_HOME=%q %q serve\nthen open (the address carries its access token, kept in GRACE_HOME/web/token):\n  %s\n' \
  "$GRACE_HOME" "$(command -v grace)" "$(grace serve --print-url)"
