#!/usr/bin/env bash
# Time per task: airlock on a 2000-task playbook against ansible-playbook (ansible-core 2.19,
# local connection) on 50 tasks of the same kind (file + copy with templated content), in
# the same run. Prints a Markdown table row for docs/benchmarks.md.
#
#   bash benches/playbook.sh            # builds airlock --release, sets up ansible-core if needed
#
# Env: AIRLOCK_TASKS (default 2000), ANSIBLE_TASKS (default 50), RUNS (default 3).
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
AIRLOCK_TASKS=${AIRLOCK_TASKS:-2000}
ANSIBLE_TASKS=${ANSIBLE_TASKS:-50}
RUNS=${RUNS:-3}   # runs per tool: the first creates, the best of the others is the re-run
cargo build --release --quiet
AIRLOCK=$PWD/target/release/airlock
ANSIBLE_PLAYBOOK=${ANSIBLE_PLAYBOOK:-$PWD/target/ansible/bin/ansible-playbook}
[ -x "$ANSIBLE_PLAYBOOK" ] || bash .ci/setup-ansible
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Half the tasks are `file` (a directory per pair), half `copy` with templated content.
gen() {
  local n=$1 out=$2 dest=$3
  {
    echo "- hosts: localhost"
    echo "  connection: local"
    echo "  gather_facts: false"
    echo "  vars:"
    echo "    base: $dest"
    file_copy_tasks "$n"
  } > "$out"
}
gen "$AIRLOCK_TASKS" "$work/airlock.yml" "$work/a"
gen "$ANSIBLE_TASKS" "$work/ansible.yml" "$work/b"

read -r a_first a_best < <(times "$AIRLOCK" playbook -i localhost, "$work/airlock.yml")
read -r b_first b_best < <(times env ANSIBLE_NOCOLOR=1 ANSIBLE_PYTHON_INTERPRETER="$(dirname "$ANSIBLE_PLAYBOOK")/python" "$ANSIBLE_PLAYBOOK" -i localhost, -c local "$work/ansible.yml")
python3 - "$a_first" "$a_best" "$b_first" "$b_best" "$AIRLOCK_TASKS" "$ANSIBLE_TASKS" <<'PY'
import sys, datetime
af, ab, bf, bb = map(float, sys.argv[1:5])
na, nb = int(sys.argv[5]), int(sys.argv[6])
for label, a, b in (("first run (creates)", af, bf), ("re-run (no change)", ab, bb)):
    pa, pb = a * 1000 / na, b * 1000 / nb
    print(f"| {datetime.date.today()} | {label} | {na} tasks in {a:.3f} s | {pa:.4f} ms | {nb} tasks in {b:.2f} s | {pb:.1f} ms | {pb / pa:.0f}x |")
PY
