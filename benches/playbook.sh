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
AIRLOCK_TASKS=${AIRLOCK_TASKS:-2000}
ANSIBLE_TASKS=${ANSIBLE_TASKS:-50}
RUNS=${RUNS:-3}
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
    echo "    greeting: hello"
    echo "  tasks:"
    for ((i = 0; i < n / 2; i++)); do
      echo "    - name: dir $i"
      echo "      file: { path: \"{{ base }}/d$i\", state: directory, mode: \"0755\" }"
      echo "    - name: copy $i"
      echo "      copy:"
      echo "        dest: \"{{ base }}/d$i/f.txt\""
      echo "        content: \"{{ greeting }} number $i from {{ inventory_hostname }}\\n\""
      echo "        mode: \"0644\""
    done
  } > "$out"
}
gen "$AIRLOCK_TASKS" "$work/airlock.yml" "$work/a"
gen "$ANSIBLE_TASKS" "$work/ansible.yml" "$work/b"

best() { # best wall time in seconds of RUNS runs of "$@" (first run creates, later are idempotent)
  local best=""
  for ((r = 0; r < RUNS; r++)); do
    local s e t
    s=$(date +%s.%N)
    "$@" > /dev/null
    e=$(date +%s.%N)
    t=$(echo "$e - $s" | bc -l)
    if [ -z "$best" ] || (( $(echo "$t < $best" | bc -l) )); then best=$t; fi
  done
  echo "$best"
}
a=$(best "$AIRLOCK" playbook -i localhost, "$work/airlock.yml")
b=$(best env ANSIBLE_NOCOLOR=1 "$ANSIBLE_PLAYBOOK" -i localhost, -c local "$work/ansible.yml")
a_ms=$(echo "$a * 1000 / $AIRLOCK_TASKS" | bc -l)
b_ms=$(echo "$b * 1000 / $ANSIBLE_TASKS" | bc -l)
ratio=$(echo "$b_ms / $a_ms" | bc -l)
printf '| %s | %d tasks in %.3f s | %.4f ms | %d tasks in %.2f s | %.2f ms | %.0fx |\n' \
  "$(date -u +%Y-%m-%d)" "$AIRLOCK_TASKS" "$a" "$a_ms" "$ANSIBLE_TASKS" "$b" "$b_ms" "$ratio"
