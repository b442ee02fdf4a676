#!/usr/bin/env bash
# Loading big Helm repository indexes: airlock's `helm_sync` (a one-task playbook run by
# `airlock playbook`) reading an `index.yaml` of 2000 to 16000 entries in `helm repo index`'s
# own style from python's http.server on 127.0.0.1, against PyYAML's CSafeLoader (libyaml, as
# Ansible and Helm users' Python tools load YAML) reading the same file from disk. Optionally a
# second airlock binary (BEFORE, e.g. one built from an older commit) is timed the same way.
# Prints Markdown table rows for docs/benchmarks.md. Not run by the tests.
#
#   bash benches/yaml.sh                                   # builds airlock --release
#   BEFORE=/tmp/airlock-old ENTRIES="2000 8000" RUNS=7 bash benches/yaml.sh
#
# Env: ENTRIES (default "2000 4000 8000 16000"), RUNS (default 5: the median and the range are
# printed), BEFORE (another airlock binary, timed as a third column).
#
# The index: charts of 4 to 16 versions each, every entry with the fields `helm repo index`
# writes for a chart like NVIDIA's gpu-operator (apiVersion, appVersion, created, description,
# digest, home, icon, keywords, kubeVersion, maintainers, name, sources, urls, version), lists
# not indented under their key and absolute chart URLs. The task selects one chart version,
# a real chart package whose digest is in the index: after an untimed first run has downloaded
# it, each timed run fetches and parses the whole index, selects, checks the chart in place
# against its digest and compares the local index it would write, changing nothing. Each run,
# the tools take turns (airlock, BEFORE, PyYAML), so they share the machine's load alike.
set -euo pipefail
cd "$(dirname "$0")/.."
ENTRIES=${ENTRIES:-2000 4000 8000 16000}
RUNS=${RUNS:-5}
BEFORE=${BEFORE:-}
python3 -c 'import yaml' 2>/dev/null || { echo "needs PyYAML for python3 (pip install pyyaml)" >&2; exit 1; }
cargo build --release --quiet
AIRLOCK=$PWD/target/release/airlock
mkdir -p target
work=$(mktemp -d -p "$PWD/target" yaml-bench.XXXXXX)
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/www"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 --directory "$work/www" "$port" >/dev/null 2>&1 &
server_pid=$!
python3 - "$port" <<'PY'
import socket, sys, time
for _ in range(100):
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()
        break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit("http.server did not start")
PY

cat > "$work/sync.yml" <<EOF
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - helm_sync:
        repos:
          - name: bench
            url: "http://127.0.0.1:$port/{{ entries }}"
            charts: [gpu-operator-00000]
            versions: [v24.9.0]
        dest: "{{ dest }}"
EOF

for n in $ENTRIES; do
  # The index of n entries and the one chart package the task selects.
  python3 - "$work/www/$n" "$n" "$port" <<'PY'
import hashlib, io, os, sys, tarfile
root, total, port = sys.argv[1], int(sys.argv[2]), sys.argv[3]
os.makedirs(f"{root}/charts", exist_ok=True)
chart = "apiVersion: v2\nname: gpu-operator-00000\nversion: v24.9.0\nappVersion: v24.9.0\n"
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w:gz") as tar:
    info = tarfile.TarInfo("gpu-operator-00000/Chart.yaml")
    info.size = len(chart)
    tar.addfile(info, io.BytesIO(chart.encode()))
with open(f"{root}/charts/gpu-operator-00000-v24.9.0.tgz", "wb") as f:
    f.write(buf.getvalue())
real_digest = hashlib.sha256(buf.getvalue()).hexdigest()
out = ["apiVersion: v1", "entries:"]
written, c = 0, 0
while written < total:
    name = f"gpu-operator-{c:05d}"
    out.append(f"  {name}:")
    for v in range(min(4 + c % 13, total - written)):
        version = f"v24.{9 - v % 10}.{v // 10}"
        digest = real_digest if (c, v) == (0, 0) else hashlib.sha256(f"{name}-{version}".encode()).hexdigest()
        out += [
            "  - apiVersion: v2",
            f"    appVersion: {version}",
            f'    created: "2024-10-{1 + v % 28:02d}T18:29:03.{c % 1000:03d}458545Z"',
            f"    description: NVIDIA GPU Operator creates/configures/manages GPUs atop Kubernetes ({c})",
            f"    digest: {digest}",
            "    home: https://github.com/NVIDIA/gpu-operator",
            "    icon: https://assets.nvidiagrid.net/ngc/logos/Infrastructure.png",
            "    keywords:",
            "    - gpu",
            "    - cuda",
            "    - compute",
            "    - operator",
            "    kubeVersion: '>= 1.16.0-0'",
            "    maintainers:",
            "    - email: operator_feedback@nvidia.com",
            "      name: NVIDIA",
            f"    name: {name}",
            "    sources:",
            "    - https://github.com/NVIDIA/gpu-operator",
            "    urls:",
            f"    - http://127.0.0.1:{port}/{total}/charts/{name}-{version}.tgz",
            f"    version: {version}",
        ]
        written += 1
    c += 1
out.append('generated: "2024-10-29T00:00:00Z"')
with open(f"{root}/index.yaml", "w") as f:
    f.write("\n".join(out) + "\n")
PY
  tools=(airlock)
  [ -n "$BEFORE" ] && tools+=(before)
  for t in "${tools[@]}"; do
    bin=$AIRLOCK
    [ "$t" = before ] && bin=$BEFORE
    # The untimed first run downloads the chart; it must succeed and leave it in place.
    "$bin" playbook -i localhost, -e entries="$n" -e dest="$work/dest-$t-$n" "$work/sync.yml" >"$work/first.log" 2>&1 \
      || { tail -20 "$work/first.log" >&2; exit 1; }
    [ -f "$work/dest-$t-$n/bench/gpu-operator-00000-v24.9.0.tgz" ] || { echo "$t did not download the chart" >&2; exit 1; }
  done
  python3 - "$RUNS" "$n" "$work" "$AIRLOCK" "$BEFORE" <<'PY'
import datetime, os, statistics, subprocess, sys, time
runs, n, work, airlock, before = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
index = f"{work}/www/{n}/index.yaml"
import yaml
loader = "CSafeLoader" if hasattr(yaml, "CSafeLoader") else "SafeLoader"
def sync(binary, tag):
    return [binary, "playbook", "-i", "localhost,", "-e", f"entries={n}", "-e", f"dest={work}/dest-{tag}-{n}", f"{work}/sync.yml"]
cmds = {"airlock": sync(airlock, "airlock")}
if before:
    cmds["before"] = sync(before, "before")
cmds["pyyaml"] = [sys.executable, "-c", f"import sys, yaml; yaml.load(open(sys.argv[1], 'rb'), Loader=yaml.{loader})", index]
times = {k: [] for k in cmds}
for _ in range(runs):
    for k, cmd in cmds.items():
        t = time.perf_counter()
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        times[k].append(time.perf_counter() - t)
        out = r.stdout.decode(errors="replace")
        if r.returncode != 0 or (k != "pyyaml" and "changed=0" not in out):
            sys.exit(f"{k} failed or changed something:\n{out[-3000:]}")
def fmt(ts):
    return f"{statistics.median(ts):.2f} s ({min(ts):.2f}-{max(ts):.2f})"
size = os.path.getsize(index) / (1 << 20)
row = [str(datetime.date.today()), f"{int(n):,} entries, {size:.1f} MiB", fmt(times["airlock"])]
if before:
    row.append(fmt(times["before"]))
row += [fmt(times["pyyaml"]), f"{statistics.median(times['pyyaml']) / statistics.median(times['airlock']):.1f}x"]
print("| " + " | ".join(row) + " |", flush=True)
PY
done
