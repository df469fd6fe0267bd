#!/usr/bin/env bash
# Instructions per command, counted by valgrind (deterministic where wall time is not).
#
# Each workload of benchmarks/instructions.py runs twice under
# `valgrind --tool=cachegrind --cache-sim=no`, with a small and a large count;
# (large - small) / (commands large - commands small) is the cost of one
# command (start-up, imports and warm-up cancel out).  Prints instructions per
# command on the memory and SQLite paths of bench_lifecycle.py / bench_sqlite.py,
# per trigger of the bare shared Machine, per command of the inline floor, and
# the ratios (issue 15: a command <= 4x the bare trigger, <= 1.4x the floor).
#
# Memory workloads: 300 -> 700 requirements by default, so that records leave the
# memory store's 256 hot ones and their packing is counted, as in use.
#
# Usage: benchmarks/instructions.sh [--smoke] [--python PATH] [--small N] [--large N] [--raw] [--sql-only]
#   --smoke: tiny counts (CI: shows the script and valgrind still work; figures rough).
#   --raw: also raw sqlite3 (bench_sqlite.run_raw: one outbox row, no summary rows;
#          and "the same writes" of issue 15.4, every row reqmgmt writes:
#          run_raw(same_rows=True)), the SQLite command without the summary rows, and
#          an import (create_many, batches of 100) against raw executemany (without and
#          with the summary rows: run_raw_import(same_rows=True)): prints the ratios
#          (issue 15: <= 2.0x against the same rows) and what the summaries cost a
#          SQLite command (<= +10 %).
#   --sql-only: the SQLite workloads only (with --raw: no memory, bare, floor).
#   --postgres URL: also PostgreSQL against raw psycopg (bench_postgres.py --only: the
#          client process's instructions; the server's work is not counted), commands
#          against both raw baselines and an import against both (requirements 5 -> 25,
#          rows 100 -> 300).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=""
SMALL=300
LARGE=700
SQL_SMALL=10
SQL_LARGE=60
IMPORT_SMALL=100
IMPORT_LARGE=600
RAW=0
SQL_ONLY=0
POSTGRES=""
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) SMALL=20; LARGE=60; SQL_SMALL=4; SQL_LARGE=12; IMPORT_SMALL=100; IMPORT_LARGE=200; shift ;;
    --raw) RAW=1; shift ;;
    --sql-only) SQL_ONLY=1; shift ;;
    --postgres) POSTGRES="$2"; shift 2 ;;
    --python) PYTHON="$2"; shift 2 ;;
    --small) SMALL="$2"; SQL_SMALL="$2"; shift 2 ;;
    --large) LARGE="$2"; SQL_LARGE="$2"; shift 2 ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ -z "$PYTHON" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }
if [ "$LARGE" -le "$SMALL" ] || [ "$SQL_LARGE" -le "$SQL_SMALL" ]; then
  echo "--large must be greater than --small" >&2; exit 2
fi

# counted COMMAND... -> "instructions commands" (valgrind's I refs; the command's
# last line of digits is how many commands it ran)
counted() {
  local out refs done
  out=$(valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \
    "$@" 2>&1) || { echo "$out" >&2; return 1; }
  refs=$(echo "$out" | grep -E 'I +refs:' | tr -d ', ' | sed 's/.*refs://')
  done=$(echo "$out" | grep -E '^[0-9]+$' | tail -1)
  if [ -z "$refs" ] || [ -z "$done" ]; then echo "$out" >&2; return 1; fi
  echo "$refs $done"
}

# instructions WORKLOAD N -> "instructions commands" (benchmarks/instructions.py)
instructions() { counted "$PYTHON" benchmarks/instructions.py "$1" "$2"; }

# per_command_of COUNTER WORKLOAD SMALL LARGE -> instructions per command (integer).
# The two runs go side by side (instruction counts do not depend on the load).
per_command_of() {
  local ia ca ib cb small large pa pb ok=0
  small=$(mktemp) large=$(mktemp)
  "$1" "$2" "$3" >"$small" & pa=$!
  "$1" "$2" "$4" >"$large" & pb=$!
  wait "$pa" || ok=1
  wait "$pb" || ok=1
  read -r ia ca <"$small" || true
  read -r ib cb <"$large" || true
  rm -f "$small" "$large"
  if [ "$ok" != 0 ]; then return 1; fi
  echo $(( (ib - ia) / (cb - ca) ))
}

# per_command WORKLOAD SMALL LARGE: benchmarks/instructions.py's workloads
per_command() { per_command_of instructions "$@"; }

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
kilo() { awk -v a="$1" 'BEGIN { printf "%.1fk", a / 1000 }'; }
sqlite=$(per_command sqlite "$SQL_SMALL" "$SQL_LARGE")
if [ "$SQL_ONLY" = 0 ]; then
  memory=$(per_command memory "$SMALL" "$LARGE")
  bare=$(per_command bare "$SMALL" "$LARGE")
  floor=$(per_command floor "$SMALL" "$LARGE")
  echo "instructions per command (valgrind, requirements $SMALL -> $LARGE; SQLite $SQL_SMALL -> $SQL_LARGE)"
  printf '  %-36s %10s\n' "reqmgmt, memory store" "$(kilo "$memory")"
  printf '  %-36s %10s\n' "reqmgmt, SQLite (synchronous=NORMAL)" "$(kilo "$sqlite")"
  printf '  %-36s %10s\n' "bare shared Machine trigger" "$(kilo "$bare")"
  printf '  %-36s %10s\n' "floor: minimal audited command" "$(kilo "$floor")"
  echo "ratios"
  printf '  %-36s %9sx  (target <= 4)\n' "memory command / bare trigger" "$(ratio "$memory" "$bare")"
  printf '  %-36s %9sx  (target <= 1.4)\n' "memory command / floor" "$(ratio "$memory" "$floor")"
  printf '  %-36s %9sx\n' "floor / bare trigger" "$(ratio "$floor" "$bare")"
  printf '  %-36s %9sx\n' "SQLite command / memory command" "$(ratio "$sqlite" "$memory")"
else
  echo "instructions per command (valgrind, SQLite requirements $SQL_SMALL -> $SQL_LARGE)"
  printf '  %-36s %10s\n' "reqmgmt, SQLite (synchronous=NORMAL)" "$(kilo "$sqlite")"
fi
if [ "$RAW" = 1 ]; then
  nosummary=$(per_command sqlite-nosummary "$SQL_SMALL" "$SQL_LARGE")
  raw=$(per_command raw-sqlite "$SQL_SMALL" "$SQL_LARGE")
  same=$(per_command raw-same-sqlite "$SQL_SMALL" "$SQL_LARGE")
  imp=$(per_command import-sqlite "$IMPORT_SMALL" "$IMPORT_LARGE")
  raw_imp=$(per_command raw-import-sqlite "$IMPORT_SMALL" "$IMPORT_LARGE")
  same_imp=$(per_command raw-same-import-sqlite "$IMPORT_SMALL" "$IMPORT_LARGE")
  summaries=$(awk -v a="$sqlite" -v b="$nosummary" 'BEGIN { printf "%+.1f %%", (a / b - 1) * 100 }')
  echo "SQLite against raw sqlite3 (synchronous=NORMAL; imports: rows $IMPORT_SMALL -> $IMPORT_LARGE, 100 a batch)"
  printf '  %-36s %10s\n' "SQLite command, summaries off" "$(kilo "$nosummary")"
  printf '  %-36s %10s\n' "raw sqlite3, same writes, a command" "$(kilo "$raw")"
  printf '  %-36s %10s\n' "raw sqlite3, also the same rows" "$(kilo "$same")"
  printf '  %-36s %10s\n' "reqmgmt import, a row" "$(kilo "$imp")"
  printf '  %-36s %10s\n' "raw sqlite3 import, a row" "$(kilo "$raw_imp")"
  printf '  %-36s %10s\n' "raw sqlite3 import, the same rows" "$(kilo "$same_imp")"
  printf '  %-36s %9sx\n' "SQLite command / raw sqlite3" "$(ratio "$sqlite" "$raw")"
  printf '  %-36s %9sx  (target <= 2.0)\n' "SQLite command / raw, same rows" "$(ratio "$sqlite" "$same")"
  printf '  %-36s %9sx\n' "SQLite import / raw sqlite3" "$(ratio "$imp" "$raw_imp")"
  printf '  %-36s %9sx  (target <= 2.0)\n' "SQLite import / raw, same rows" "$(ratio "$imp" "$same_imp")"
  printf '  %-36s %10s  (target <= +10 %%)\n' "summaries' cost, SQLite command" "$summaries"
fi
if [ -n "$POSTGRES" ]; then
  # pg_instructions WORKLOAD N -> "instructions commands" (bench_postgres.py --only)
  pg_instructions() {
    counted "$PYTHON" benchmarks/bench_postgres.py --url "$POSTGRES" --only "$1" --n "$2" --batch 100
  }
  pg=$(per_command_of pg_instructions reqmgmt 5 25)
  pg_raw=$(per_command_of pg_instructions raw 5 25)
  pg_same=$(per_command_of pg_instructions raw-same 5 25)
  pg_imp=$(per_command_of pg_instructions import 100 300)
  pg_raw_imp=$(per_command_of pg_instructions raw-import 100 300)
  pg_same_imp=$(per_command_of pg_instructions raw-same-import 100 300)
  echo "PostgreSQL against raw psycopg (client process only; imports: rows 100 -> 300, 100 a batch)"
  printf '  %-36s %10s\n' "reqmgmt command" "$(kilo "$pg")"
  printf '  %-36s %10s\n' "raw psycopg, a command" "$(kilo "$pg_raw")"
  printf '  %-36s %10s\n' "raw psycopg, the same rows" "$(kilo "$pg_same")"
  printf '  %-36s %10s\n' "reqmgmt import, a row" "$(kilo "$pg_imp")"
  printf '  %-36s %10s\n' "raw psycopg import, a row" "$(kilo "$pg_raw_imp")"
  printf '  %-36s %10s\n' "raw psycopg import, the same rows" "$(kilo "$pg_same_imp")"
  printf '  %-36s %9sx\n' "command / raw psycopg" "$(ratio "$pg" "$pg_raw")"
  printf '  %-36s %9sx  (target <= 2.0)\n' "command / raw, same rows" "$(ratio "$pg" "$pg_same")"
  printf '  %-36s %9sx\n' "import / raw psycopg" "$(ratio "$pg_imp" "$pg_raw_imp")"
  printf '  %-36s %9sx  (target <= 2.0)\n' "import / raw, same rows" "$(ratio "$pg_imp" "$pg_same_imp")"
fi
