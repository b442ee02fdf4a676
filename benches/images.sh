#!/usr/bin/env bash
# Pulling container images into an OCI layout: airlock's `image_cache` module (a one-task
# playbook run by `airlock playbook`, every image into one layout) against skopeo, from
# Debian's docker-registry on 127.0.0.1. Wall time and peak memory (`/usr/bin/time -v`,
# "Maximum resident set size"), cold (empty destination). Prints Markdown table rows for
# docs/benchmarks.md. Not run by the tests.
#
#   bash benches/images.sh             # builds airlock --release; installs what is missing
#   RUNS=5 bash benches/images.sh
#
# Env: RUNS (default 3; the median is kept, the largest memory), CONCURRENCY (default 8,
# airlock's default `concurrency`; skopeo 1.9 copies up to 6 layers of an image at once).
#
# The images, built once as an OCI layout by a generator below (gzipped tars of random bytes,
# so incompressible) and pushed once with `skopeo copy --all`, both kept in
# target/bench-images/: five images of 3 to 5 layers of 1 KiB to 12 MiB, four of them on the
# same base layer, two also sharing a library layer, and one a multi-arch index (linux/amd64
# and linux/arm64, each with its own base). Both platforms are kept (`platforms: [all]`,
# `skopeo copy --all`). What is compared:
#
# * airlock: `image_cache` with the five images into one layout;
# * skopeo, sequential: `skopeo copy --all docker://... oci:DIR:REF` per image into one layout,
#   one after the other, as a user would script it (skopeo skips blobs already in the layout);
# * skopeo, parallel: the same five copies at once with `xargs -P 5`, each into its own
#   layout (concurrent copies into one layout would race on its index.json); memory is then
#   the largest of the five processes, not their sum;
# * skopeo sync: `skopeo sync --all --src yaml --dest dir`, one command for all images, each
#   into its own directory (skopeo 1.9's sync cannot write an OCI layout).
#
# `sync` runs before each timed command, untimed; the tools alternate within each run. airlock
# and skopeo both flush the blobs they write to disk (fsync).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
CONCURRENCY=${CONCURRENCY:-8}

need=()
[ -x /usr/bin/docker-registry ] || need+=(docker-registry)
command -v skopeo >/dev/null || need+=(skopeo)
[ -x /usr/bin/time ] || need+=(time)
command -v curl >/dev/null || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { echo "needs ${need[*]}: run as root, or apt-get install them" >&2; exit 1; }
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

cargo build --release --quiet
AIRLOCK=$PWD/target/release/airlock
base=$PWD/target/bench-images
mkdir -p "$base"
work=$(mktemp -d -p "$base" run.XXXXXX)
registry_pid=""
cleanup() {
  [ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# The images as an OCI layout (bump the suffix when the generator changes).
layout=$base/layout-v1
if [ ! -f "$layout/index.json" ]; then
  rm -rf "$layout.tmp"
  python3 - "$layout.tmp" <<'EOF'
import gzip, hashlib, io, json, os, sys, tarfile
root = sys.argv[1]
os.makedirs(os.path.join(root, "blobs/sha256"))
def blob(media_type, data):
    d = hashlib.sha256(data).hexdigest()
    with open(os.path.join(root, "blobs/sha256", d), "wb") as f:
        f.write(data)
    return {"mediaType": media_type, "digest": "sha256:" + d, "size": len(data)}
layers = {}
def layer(name, size):
    """A gzipped tar holding one file of `size` random bytes."""
    if name not in layers:
        t = io.BytesIO()
        with tarfile.open(fileobj=t, mode="w", format=tarfile.GNU_FORMAT) as tar:
            info = tarfile.TarInfo(f"opt/{name}/data")
            info.size, info.mtime, info.mode = size, 1700000000, 0o644
            tar.addfile(info, io.BytesIO(os.urandom(size)))
        raw = t.getvalue()
        layers[name] = (blob("application/vnd.oci.image.layer.v1.tar+gzip", gzip.compress(raw, 1, mtime=0)),
                        "sha256:" + hashlib.sha256(raw).hexdigest())
    return layers[name]
MiB = 1 << 20
def image(name, arch, parts):
    ls = [layer(n, s) for n, s in parts]
    config = {"created": "2024-01-01T00:00:00Z", "architecture": arch, "os": "linux",
              "config": {"Env": ["PATH=/usr/bin:/bin"], "Cmd": ["/bin/sh"]},
              "rootfs": {"type": "layers", "diff_ids": [d for _, d in ls]},
              "history": [{"created": "2024-01-01T00:00:00Z", "created_by": f"{name} layer {i}"} for i in range(len(ls))]}
    m = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
         "config": blob("application/vnd.oci.image.config.v1+json", json.dumps(config).encode()),
         "layers": [d for d, _ in ls]}
    desc = blob("application/vnd.oci.image.manifest.v1+json", json.dumps(m, indent=3).encode())
    desc["platform"] = {"architecture": arch, "os": "linux"}
    return desc
tags = []
def tag(t, desc):
    d = {k: v for k, v in desc.items() if k != "platform"}
    d["annotations"] = {"org.opencontainers.image.ref.name": t}
    tags.append(d)
base = ("base-amd64", 12 * MiB)
tag("cuda", image("cuda", "amd64", [base, ("cuda-libs", 10 * MiB), ("cuda-tools", 3 * MiB), ("cuda-env", 1024)]))
tag("dcgm", image("dcgm", "amd64", [base, ("cuda-libs", 10 * MiB), ("dcgm", 8 * MiB), ("dcgm-conf", 2048)]))
tag("web", image("web", "amd64", [base, ("web-app", 6 * MiB), ("web-static", 4 * MiB), ("web-conf", 1024)]))
tag("tools", image("tools", "amd64", [base, ("tools-a", 5 * MiB), ("tools-b", 5 * MiB), ("tools-c", 2 * MiB), ("tools-d", 1024)]))
amd = image("multi", "amd64", [("multi-base-amd64", 8 * MiB), ("multi-app-amd64", 6 * MiB), ("multi-conf", 1024)])
arm = image("multi", "arm64", [("multi-base-arm64", 8 * MiB), ("multi-app-arm64", 6 * MiB), ("multi-conf", 1024)])
index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [amd, arm]}
tag("multi", blob("application/vnd.oci.image.index.v1+json", json.dumps(index, indent=3).encode()))
with open(os.path.join(root, "oci-layout"), "w") as f:
    f.write('{"imageLayoutVersion":"1.0.0"}')
with open(os.path.join(root, "index.json"), "w") as f:
    json.dump({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": tags}, f)
EOF
  rm -rf "$base/registry"
  mv "$layout.tmp" "$layout"
fi
images=(cuda dcgm web tools multi)
blobs_mib=$(du -sb --apparent-size "$layout/blobs" | awk '{ printf "%.0f", $1 / 1048576 }')

# The registry, its storage kept with the layout (pushed once).
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$work/registry.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $base/registry
http:
  addr: 127.0.0.1:$port
  secret: airlock-bench
EOF
/usr/bin/docker-registry serve "$work/registry.yml" > "$work/registry.log" 2>&1 &
registry_pid=$!
reg=127.0.0.1:$port
for _ in $(seq 100); do curl -sf -o /dev/null "http://$reg/v2/" && break; sleep 0.1; done
curl -sf -o /dev/null "http://$reg/v2/" || { cat "$work/registry.log" >&2; exit 1; }
if [ ! -f "$base/registry/pushed" ]; then
  for i in "${images[@]}"; do
    skopeo --insecure-policy copy -q --all --dest-tls-verify=false "oci:$layout:$i" "docker://$reg/bench/$i:1.0"
  done
  touch "$base/registry/pushed"
fi
# Every blob is read once before timing, so the registry serves from the page cache.
find "$base/registry" -type f -print0 | xargs -0 cat > /dev/null

# The playbook and the user's sequential script (one copy per image into one layout) for the
# directories of run $1.
scripts() {
  local d=$work/run$1
  {
    echo "- hosts: localhost"
    echo "  connection: local"
    echo "  gather_facts: false"
    echo "  tasks:"
    echo "    - name: pull the benchmark images"
    echo "      image_cache:"
    echo "        images:"
    for i in "${images[@]}"; do echo "          - $reg/bench/$i:1.0"; done
    echo "        dest: $d/airlock/images"
    echo "        cache_dir: $d/airlock"
    echo "        platforms: [all]"
    echo "        concurrency: $CONCURRENCY"
  } > "$d/pull.yml"
  for i in "${images[@]}"; do
    echo "skopeo --insecure-policy copy -q --all --src-tls-verify=false docker://$reg/bench/$i:1.0 oci:$d/skopeo:$reg/bench/$i:1.0"
  done > "$d/skopeo-seq.sh"
}
printf '%s\n' "${images[@]}" > "$work/images.txt"
{
  echo "$reg:"
  echo "  tls-verify: false"
  echo "  images:"
  for i in "${images[@]}"; do echo "    bench/$i: [\"1.0\"]"; done
} > "$work/sync.yml"

# Runs "$@" once under /usr/bin/time -v, after a sync; prints "seconds max_rss_kib".
measure() {
  sync
  local t0 t1
  t0=$(date +%s.%N)
  /usr/bin/time -v -o "$work/time.txt" "$@" > "$work/out.txt" 2>&1 || { cat "$work/out.txt" >&2; exit 1; }
  t1=$(date +%s.%N)
  echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }') $(awk -F': ' '/Maximum resident set size/ { print $2 }' "$work/time.txt")"
}

declare -a at ar st sr pt pr yt yr
for ((r = 0; r < RUNS; r++)); do
  # New directories each run, nothing deleted until the end (see benches/yum.sh).
  d=$work/run$r
  mkdir -p "$d/parallel" "$d/sync-dir"
  scripts "$r"
  read -r at[r] ar[r] < <(measure "$AIRLOCK" playbook -i localhost, "$d/pull.yml")
  read -r st[r] sr[r] < <(measure bash "$d/skopeo-seq.sh")
  read -r pt[r] pr[r] < <(measure xargs -P 5 -I{} skopeo --insecure-policy copy -q --all --src-tls-verify=false \
    "docker://$reg/bench/{}:1.0" "oci:$d/parallel/{}:{}" < "$work/images.txt")
  read -r yt[r] yr[r] < <(measure skopeo --insecure-policy sync --all --src yaml --dest dir "$work/sync.yml" "$d/sync-dir")
  echo "run $((r + 1)): airlock ${at[r]} s, skopeo sequential ${st[r]} s, parallel ${pt[r]} s, sync ${yt[r]} s" >&2
done

# Sanity: airlock's layout and skopeo's hold the same blobs, and name the same images.
a_blobs=$(ls "$d/airlock/images/blobs/sha256" | sort)
s_blobs=$(ls "$d/skopeo/blobs/sha256" | sort)
echo "blobs: generated $(ls "$layout/blobs/sha256" | wc -l), airlock $(grep -c . <<< "$a_blobs"), skopeo $(grep -c . <<< "$s_blobs")" >&2
[ "$a_blobs" = "$s_blobs" ] || { echo "the two layouts hold different blobs" >&2; exit 1; }
refs() { python3 -c 'import json, sys; print("\n".join(sorted(m["annotations"]["org.opencontainers.image.ref.name"] for m in json.load(open(sys.argv[1]))["manifests"])))' "$1"; }
[ "$(refs "$d/airlock/images/index.json")" = "$(refs "$d/skopeo/index.json")" ] || { echo "the layouts name different images" >&2; exit 1; }

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
largest() { printf '%s\n' "$@" | sort -g | tail -1; }
a_s=$(median "${at[@]}") a_k=$(largest "${ar[@]}")
row() { # what skopeo_s skopeo_kib
  awk -v d="$(date +%F)" -v what="$1" -v as="$a_s" -v ak="$a_k" -v ss="$2" -v sk="$3" -v mib="$blobs_mib" -v n="${#images[@]}" 'BEGIN {
    printf "| %s | %d images, %d MiB of blobs | %.2f s | %.1f MiB | %s | %.2f s | %.1f MiB | %.2fx |\n",
      d, n, mib, as, ak / 1024, what, ss, sk / 1024, ss / as }'
}
echo "| date | images | airlock | airlock max RSS | skopeo 1.9.3, run as | skopeo | skopeo max RSS | skopeo / airlock |"
echo "|---|---|---|---|---|---|---|---|"
row "copy, one after the other, into one OCI layout" "$(median "${st[@]}")" "$(largest "${sr[@]}")"
row "copy, 5 at once, one OCI layout each" "$(median "${pt[@]}")" "$(largest "${pr[@]}")"
row "sync --src yaml --dest dir" "$(median "${yt[@]}")" "$(largest "${yr[@]}")"
echo "load average after the runs: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
