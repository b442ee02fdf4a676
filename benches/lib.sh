# Helpers the benchmark scripts share (sourced, not run).

# The tasks both tools run in the runner benchmarks: N tasks under `  tasks:`, half `file` (a
# directory each), half `copy` with templated content into it, all under "{{ base }}".
file_copy_tasks() {
  local n=$1
  echo "  tasks:"
  for ((i = 0; i < n / 2; i++)); do
    echo "    - name: dir $i"
    echo "      file: { path: \"{{ base }}/d$i\", state: directory, mode: \"0755\" }"
    echo "    - name: copy $i"
    echo "      copy:"
    echo "        dest: \"{{ base }}/d$i/f.txt\""
    echo "        content: \"hello number $i from {{ inventory_hostname }}\\n\""
    echo "        mode: \"0644\""
  done
}

# Times RUNS runs of "$@" (at least 2); prints the first run (creates everything) and the best
# later one (idempotent: compares and changes nothing). A failing run stops with its output.
times() {
  python3 - "$RUNS" "$@" <<'PY'
import subprocess, sys, time
runs, cmd = int(sys.argv[1]), sys.argv[2:]
ts = []
for _ in range(max(runs, 2)):
    t = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    ts.append(time.perf_counter() - t)
    if r.returncode != 0:
        sys.stderr.write(r.stdout.decode(errors="replace")[-3000:])
        sys.exit(f"{cmd[0]} failed")
print(ts[0], min(ts[1:]))
PY
}

# A TCP port of 127.0.0.1 free now (for a server a benchmark starts).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Waits up to 10 s for URL to answer over HTTP; stops the script when it does not.
wait_http() { for _ in $(seq 100); do curl -s -o /dev/null "$1" && return; sleep 0.1; done; echo "$1 does not answer" >&2; exit 1; }
