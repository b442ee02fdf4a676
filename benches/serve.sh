#!/usr/bin/env bash
# airlock serve under load, and against the servers it replaces. With wrk (Debian's package)
# from a second process on 127.0.0.1:
#   1. each of the five mirrors under 64 connections for DURATION seconds: requests/s and
#      errors (socket errors and non-2xx answers; the goal is zero);
#   2. static files (64 KiB and 1 MiB) against nginx serving the same directory;
#   3. registry blob reads (a 4 MiB layer) against Debian's docker-registry serving the same
#      storage.
# For 2 and 3 it also prints each server's CPU time per request, which other processes on the
# machine move much less than requests/s.
# Prints Markdown table rows for docs/benchmarks.md. Not run by the tests.
#
#   bash benches/serve.sh                 # builds airlock --release; installs wrk and nginx
#   DURATION=10 bash benches/serve.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
DURATION=${DURATION:-30}
CMP_DURATION=${CMP_DURATION:-15}

need=()
command -v wrk >/dev/null || need+=(wrk)
[ -x /usr/sbin/nginx ] || need+=(nginx)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
[ -x /usr/bin/docker-registry ] || { echo "docker-registry is missing: run .ci/setup-registry" >&2; exit 1; }
[ -d target/pypi-fixture ] || { echo "target/pypi-fixture is missing: run .ci/setup-pypi" >&2; exit 1; }

cargo build --release --quiet
AIRLOCK=$PWD/target/release/airlock
work=$(mktemp -d -p "$PWD/target" bench-serve.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# --- The tree ---------------------------------------------------------------------------------
root=$work/root
mkdir -p "$root/misc-files" "$root/yum/base/repodata" "$root/pip" "$root/helm/stable"
head -c 65536 /dev/urandom > "$root/misc-files/small.bin"
head -c 1048576 /dev/urandom > "$root/misc-files/big.bin"
head -c 65536 /dev/urandom > "$root/yum/base/repodata/primary.xml.gz"
cp target/pypi-fixture/*.whl "$root/pip/"
python3 - "$root/helm/stable" "$work/layout" <<'PY'
import gzip, hashlib, io, json, os, sys, tarfile
charts, layout = sys.argv[1], sys.argv[2]
for v in ("0.1.0", "0.2.0", "1.0.0"):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as t:
        body = f"apiVersion: v2\nname: demo\nversion: {v}\n".encode()
        info = tarfile.TarInfo("demo/Chart.yaml"); info.size = len(body)
        t.addfile(info, io.BytesIO(body))
    open(f"{charts}/demo-{v}.tgz", "wb").write(raw.getvalue())
os.makedirs(f"{layout}/blobs/sha256", exist_ok=True)
def blob(data, mt):
    d = hashlib.sha256(data).hexdigest()
    open(f"{layout}/blobs/sha256/{d}", "wb").write(data)
    return {"mediaType": mt, "digest": f"sha256:{d}", "size": len(data)}
raw = io.BytesIO()
with tarfile.open(fileobj=raw, mode="w") as t:
    info = tarfile.TarInfo("data.bin"); info.size = 4 << 20
    t.addfile(info, io.BytesIO(os.urandom(4 << 20)))
layer = blob(gzip.compress(raw.getvalue(), compresslevel=1, mtime=0), "application/vnd.oci.image.layer.v1.tar+gzip")
config = blob(json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()]}}).encode(), "application/vnd.oci.image.config.v1+json")
m = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": config, "layers": [layer]}
d = blob(json.dumps(m).encode(), m["mediaType"])
d["annotations"] = {"org.opencontainers.image.ref.name": "127.0.0.1:5000/bench/img:v1"}
json.dump({"schemaVersion": 2, "manifests": [d]}, open(f"{layout}/index.json", "w"))
open(f"{layout}/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
print(layer["digest"], file=open(f"{layout}/layer-digest", "w"))
PY
cat > "$work/import.yml" <<YML
- hosts: localhost
  gather_facts: false
  tasks:
    - registry_import: {layout: "$work/layout", storage: "$root/registry"}
YML
"$AIRLOCK" playbook "$work/import.yml" >/dev/null
layer=$(cat "$work/layout/layer-digest")

# --- airlock serve ------------------------------------------------------------------------------
p=($(free_port) $(free_port) $(free_port) $(free_port) $(free_port))
"$AIRLOCK" serve --root "$root" --bind 127.0.0.1 --registry-port "${p[0]}" --yum-port "${p[1]}" \
  --helm-port "${p[2]}" --pip-port "${p[3]}" --files-port "${p[4]}" 2>/dev/null &
apid=$!; pids+=($!)
urls=(
  "registry blob (4 MiB)|http://127.0.0.1:${p[0]}/v2/bench/img/blobs/$layer"
  "Yum file (64 KiB)|http://127.0.0.1:${p[1]}/base/repodata/primary.xml.gz"
  "Helm index.yaml|http://127.0.0.1:${p[2]}/stable/index.yaml"
  "PyPI project page|http://127.0.0.1:${p[3]}/simple/requests/"
  "file (1 MiB)|http://127.0.0.1:${p[4]}/big.bin"
)
for u in "${urls[@]}"; do wait_http "${u#*|}"; done

# wrk's summary: requests/s, transfer/s, errors (socket errors + non-2xx/3xx).
load() { # URL SECONDS
  local out; out=$(wrk -t2 -c64 -d"$2"s --latency "$1")
  local rps tr sock non
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  tr=$(awk '/Transfer\/sec/ {print $2}' <<<"$out")
  sock=$(awk -F'[ ,]+' '/Socket errors/ {print $4+$6+$8+$10}' <<<"$out"); sock=${sock:-0}
  non=$(awk '/Non-2xx/ {print $5}' <<<"$out"); non=${non:-0}
  echo "$rps|$tr|$((sock + non))|$(awk '/requests in/ {print $1}' <<<"$out")"
}
# CPU time (user + system, in clock ticks) of a server and its child processes (nginx's workers).
cpu_ticks() { local t=0 c; for c in $1 $(pgrep -P "$1" || true); do t=$((t + $(awk '{print $14 + $15}' /proc/$c/stat))); done; echo $t; }
# Microseconds of server CPU per request while `load` runs: unlike requests/s, barely moved by
# other processes on the machine.
cpu_load() { # PID URL SECONDS -> rps|transfer|errors|µs per request
  local c0 c1 rps tr errs n
  c0=$(cpu_ticks "$1")
  IFS='|' read -r rps tr errs n <<<"$(load "$2" "$3")"
  c1=$(cpu_ticks "$1")
  echo "$rps|$tr|$errs|$(echo "scale=1; ($c1 - $c0) * 1000000 / $(getconf CLK_TCK) / $n" | bc)"
}

echo "## 64 connections, ${DURATION}s each (load average at start: $(cut -d' ' -f1-3 /proc/loadavg))"
echo "| mirror | requests/s | transfer/s | errors |"
echo "|---|---|---|---|"
for u in "${urls[@]}"; do
  IFS='|' read -r rps tr errs _ <<<"$(load "${u#*|}" "$DURATION")"
  echo "| ${u%%|*} | $rps | $tr | $errs |"
done

# --- against nginx and docker-registry ------------------------------------------------------------
np=$(free_port)
cat > "$work/nginx.conf" <<NGX
worker_processes 2;
user root;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 1024; }
http {
  # Logged, as the mirrors run (and as airlock serve logs every request).
  access_log $work/nginx-access.log;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  types { application/octet-stream bin; }
  server { listen 127.0.0.1:$np; root $root/misc-files; autoindex on; }
}
NGX
/usr/sbin/nginx -c "$work/nginx.conf" -g 'daemon off;' &
npid=$!; pids+=($!)
rp=$(free_port)
printf 'version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\n  maintenance:\n    readonly:\n      enabled: true\nhttp:\n  addr: 127.0.0.1:%s\n' "$root/registry" "$rp" > "$work/registry.yml"
/usr/bin/docker-registry serve "$work/registry.yml" >/dev/null 2>&1 &
rpid=$!; pids+=($!)
wait_http "http://127.0.0.1:$np/small.bin"; wait_http "http://127.0.0.1:$rp/v2/"

echo
echo "## Against nginx and docker-registry, 64 connections, ${CMP_DURATION}s each"
echo "| what | airlock serve req/s | other | other req/s | airlock / other | server CPU µs/request, airlock / other |"
echo "|---|---|---|---|---|---|"
cmp() { # LABEL AIRLOCK_URL OTHER_NAME OTHER_URL OTHER_PID
  local a o ae oe ac oc
  IFS='|' read -r a _ ae ac <<<"$(cpu_load "$apid" "$2" "$CMP_DURATION")"
  IFS='|' read -r o _ oe oc <<<"$(cpu_load "$5" "$4" "$CMP_DURATION")"
  if [ "$ae" != 0 ] || [ "$oe" != 0 ]; then echo "$1: errors (airlock $ae, $3 $oe): not comparable" >&2; exit 1; fi
  echo "| $1 | $a | $3 | $o | $(echo "scale=2; $a / $o" | bc) | $ac / $oc |"
}
cmp "file 64 KiB" "http://127.0.0.1:${p[4]}/small.bin" "nginx $(/usr/sbin/nginx -v 2>&1 | cut -d/ -f2)" "http://127.0.0.1:$np/small.bin" "$npid"
cmp "file 1 MiB" "http://127.0.0.1:${p[4]}/big.bin" "nginx" "http://127.0.0.1:$np/big.bin" "$npid"
cmp "registry blob 4 MiB" "http://127.0.0.1:${p[0]}/v2/bench/img/blobs/$layer" "docker-registry 2.8" "http://127.0.0.1:$rp/v2/bench/img/blobs/$layer" "$rpid"
