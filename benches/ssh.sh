#!/usr/bin/env bash
# Playbooks over SSH: airlock against ansible-playbook (ansible-core 2.19) on the same nodes, in
# the same run. The nodes are sshd servers on 127.0.0.1 (as tests/it/support/sshd.rs starts
# them), logged into as airlock-test with a throwaway key; both tools reuse one SSH connection
# per host (ControlMaster/ControlPersist) and run 5 forks. Ansible runs with pipelining on, its
# fastest setting. Prints Markdown table rows for docs/benchmarks.md. Not run by the tests.
#
#   bash benches/ssh.sh        # as root; builds airlock --release; needs .ci/setup-become,
#                              # .ci/setup-ssh and .ci/setup-ansible
#
# Env: NODES (default 3), TASKS (default 40: half `file`, half `copy` with templated content),
# RUNS (default 3: the first creates everything, the best of the others is the re-run).
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
NODES=${NODES:-3}
TASKS=${TASKS:-40}
RUNS=${RUNS:-3}
[ "$(id -u)" = 0 ] || { echo "run as root: sshd must log in as airlock-test" >&2; exit 1; }
id airlock-test >/dev/null 2>&1 || { echo "user airlock-test missing: run .ci/setup-become" >&2; exit 1; }
[ -x /usr/sbin/sshd ] || { echo "sshd missing: run .ci/setup-ssh" >&2; exit 1; }
ANSIBLE_PLAYBOOK=${ANSIBLE_PLAYBOOK:-$PWD/target/ansible/bin/ansible-playbook}
[ -x "$ANSIBLE_PLAYBOOK" ] || bash .ci/setup-ansible
cargo build --release --quiet
AIRLOCK=$PWD/target/release/airlock

work=$(mktemp -d -p /tmp airlock-bench-ssh.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work" /home/airlock-test/.airlock /home/airlock-test/.ansible /home/airlock-test/bench-*
}
trap cleanup EXIT
mkdir -p /run/sshd
ssh-keygen -q -t ed25519 -N "" -f "$work/id_ed25519"
cp "$work/id_ed25519.pub" "$work/authorized_keys"
chmod 644 "$work/authorized_keys"

inv_airlock=$work/inventory-airlock.ini
inv_ansible=$work/inventory-ansible.ini
echo "[nodes]" > "$inv_airlock"
echo "[nodes]" > "$inv_ansible"
common="ansible_host=127.0.0.1 ansible_user=airlock-test ansible_ssh_private_key_file=$work/id_ed25519 ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR'"
for i in $(seq "$NODES"); do
  port=$(free_port)
  ssh-keygen -q -t ed25519 -N "" -f "$work/node${i}_host_key"
  cat > "$work/node${i}_sshd_config" <<EOF
Port $port
ListenAddress 127.0.0.1
HostKey $work/node${i}_host_key
PidFile $work/node$i.pid
AuthorizedKeysFile $work/authorized_keys
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
AllowUsers airlock-test
Subsystem sftp internal-sftp
MaxSessions 50
MaxStartups 50
EOF
  /usr/sbin/sshd -D -f "$work/node${i}_sshd_config" &
  pids+=($!)
  echo "node$i ansible_port=$port $common" >> "$inv_airlock"
  echo "node$i ansible_port=$port $common ansible_python_interpreter=/usr/bin/python3" >> "$inv_ansible"
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
done

# The same tasks for both tools, each host writing under its own directory.
gen() {
  local out=$1 base=$2 facts=$3 n=$4
  {
    echo "- hosts: nodes"
    echo "  gather_facts: $facts"
    echo "  vars:"
    echo "    base: \"$base-{{ inventory_hostname }}\""
    file_copy_tasks "$n"
  } > "$out"
}
gen "$work/airlock.yml" /home/airlock-test/bench-airlock false "$TASKS"
gen "$work/ansible.yml" /home/airlock-test/bench-ansible false "$TASKS"
gen "$work/airlock-facts.yml" /home/airlock-test/bench-airlock-facts true 0
gen "$work/ansible-facts.yml" /home/airlock-test/bench-ansible-facts true 0

export ANSIBLE_HOST_KEY_CHECKING=False ANSIBLE_PIPELINING=True ANSIBLE_FORKS=5
read -r a_first a_best < <(times "$AIRLOCK" playbook -i "$inv_airlock" "$work/airlock.yml")
read -r b_first b_best < <(times "$ANSIBLE_PLAYBOOK" -i "$inv_ansible" "$work/ansible.yml")
read -r af_first af_best < <(times "$AIRLOCK" playbook -i "$inv_airlock" "$work/airlock-facts.yml")
read -r bf_first bf_best < <(times "$ANSIBLE_PLAYBOOK" -i "$inv_ansible" "$work/ansible-facts.yml")
bin_size=$(du -m "$AIRLOCK" | cut -f1)
version=$("$ANSIBLE_PLAYBOOK" --version | sed -n 1p | tr -d '[]')
date=$(date +%F)
python3 - "$date" "$NODES" "$TASKS" "$version" "$bin_size" "$a_first" "$a_best" "$b_first" "$b_best" "$af_best" "$bf_best" <<'PY'
import sys
date, nodes, tasks, version, size = sys.argv[1:6]
a1, a2, b1, b2, af, bf = map(float, sys.argv[6:])
print(f"airlock binary: {size} MiB (copied to each host once, on the first run); {version}; {nodes} nodes")
print("| date | what | airlock | ansible-playbook | airlock faster |")
print("|---|---|---|---|---|")
print(f"| {date} | {tasks} tasks x {nodes} hosts, first run (creates; airlock copies itself) | {a1:.2f} s | {b1:.2f} s | {b1/a1:.1f}x |")
print(f"| {date} | {tasks} tasks x {nodes} hosts, re-run (nothing changes) | {a2:.2f} s | {b2:.2f} s | {b2/a2:.1f}x |")
print(f"| {date} | facts only (`gather_facts: true`), {nodes} hosts | {af:.2f} s | {bf:.2f} s | {bf/af:.1f}x |")
PY
