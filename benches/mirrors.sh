#!/usr/bin/env bash
# The offline host: time from the archive to all five mirrors serving. airlock's
# build-offline-mirrors.yml (verify and unpack, load the four service images, registry_import
# of every cached image into the registry's storage, start the five containers, wait until
# each answers) against DeepOps's way with the same images in the same run: GNU tar unpacks an
# archive of `docker save` tars, `docker load` of every image, the registry started, then
# `docker tag` + `docker push` of every image to it, and the other four containers started,
# until each answers. Prints Markdown table rows for docs/benchmarks.md. Not run by the tests.
#
#   bash benches/mirrors.sh            # builds airlock --release; needs Docker and the
#                                      # images of .ci/build-service-images
#   RUNS=5 IMAGES=12 LAYER_MB=24 bash benches/mirrors.sh
#
# Env: RUNS (default 3, the median is kept), IMAGES (default 8 images besides the service
# images), LAYER_MB (default 16: each image is a shared 2*LAYER_MB base, a LAYER_MB layer of
# its own and a small one; random bytes, gzipped, so incompressible).
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
RUNS=${RUNS:-3}
IMAGES=${IMAGES:-8}
LAYER_MB=${LAYER_MB:-16}

for t in skopeo docker curl; do command -v $t >/dev/null || { echo "$t is missing: run .ci/setup-registry and .ci/setup-docker" >&2; exit 1; }; done
[ -x /usr/bin/docker-registry ] || { echo "docker-registry is missing: run .ci/setup-registry" >&2; exit 1; }
services=(registry:airlock-test/registry:2.8.3 nginx:airlock-test/nginx:1.27-alpine chartmuseum:airlock-test/chartmuseum-standin:v0.16.2 pypiserver:airlock-test/pypiserver:v2.3.2)
for s in "${services[@]}"; do
  docker image inspect "${s#*:}" >/dev/null 2>&1 || { echo "${s#*:} is missing: run bash .ci/build-service-images" >&2; exit 1; }
done

cargo build --release --quiet
AIRLOCK=$PWD/target/release/airlock
base=$PWD/target/bench-mirrors
mkdir -p "$base"
work=$(mktemp -d -p "$base" run.XXXXXX)
registry_pid=""
prefix=airlock-bench-$$
cleanup() {
  docker rm -f $(docker ps -aq --filter "name=$prefix") >/dev/null 2>&1 || true
  [ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# --- The connected side, untimed: an upstream registry with the images, the archive ---------
layout=$base/layout-$IMAGES-$LAYER_MB
if [ ! -f "$layout/index.json" ]; then
  python3 - "$layout" "$IMAGES" "$LAYER_MB" <<'PY'
import gzip, hashlib, io, json, os, sys, tarfile
out, n, mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.makedirs(f"{out}/blobs/sha256", exist_ok=True)
def blob(data, mt):
    d = hashlib.sha256(data).hexdigest()
    open(f"{out}/blobs/sha256/{d}", "wb").write(data)
    return {"mediaType": mt, "digest": f"sha256:{d}", "size": len(data)}
def layer(name, size):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as t:
        info = tarfile.TarInfo(name); info.size = size
        t.addfile(info, io.BytesIO(os.urandom(size)))
    gz = gzip.compress(raw.getvalue(), compresslevel=1, mtime=0)
    return blob(gz, "application/vnd.oci.image.layer.v1.tar+gzip"), hashlib.sha256(raw.getvalue()).hexdigest()
base_layer = layer("base.bin", 2 * mb << 20)
manifests = []
for i in range(n):
    layers = [base_layer, layer(f"app{i}.bin", mb << 20), layer(f"conf{i}.txt", 4096)]
    config = {"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/app"]},
              "rootfs": {"type": "layers", "diff_ids": [f"sha256:{l[1]}" for l in layers]}}
    c = blob(json.dumps(config).encode(), "application/vnd.oci.image.config.v1+json")
    m = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": c, "layers": [l[0] for l in layers]}
    d = blob(json.dumps(m).encode(), m["mediaType"])
    d["annotations"] = {"org.opencontainers.image.ref.name": f"img{i}"}
    manifests.append(d)
json.dump({"schemaVersion": 2, "manifests": manifests}, open(f"{out}/index.json", "w"))
open(f"{out}/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
PY
fi

up_port=$(free_port)
printf 'version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s/upstream\nhttp:\n  addr: 127.0.0.1:%s\n' "$work" "$up_port" > "$work/registry.yml"
/usr/bin/docker-registry serve "$work/registry.yml" >/dev/null 2>&1 &
registry_pid=$!
until curl -fs "http://127.0.0.1:$up_port/v2/" >/dev/null; do sleep 0.2; done
up=127.0.0.1:$up_port
list="docker_image_list:"
for i in $(seq 0 $((IMAGES - 1))); do
  skopeo copy -q --insecure-policy --dest-tls-verify=false "oci:$layout:img$i" "docker://$up/bench/img$i:v1"
  list="$list"$'\n'"  - {name: img$i, repo: \"$up/\", image: bench/img$i, version: v1}"
done
mirror_images="mirror_images:"
for s in "${services[@]}"; do
  name=${s%%:*}; local_ref=${s#*:}; path=${local_ref#airlock-test/}
  skopeo copy -q --insecure-policy --dest-tls-verify=false "docker-daemon:$local_ref" "docker://$up/bench/$path"
  mirror_images="$mirror_images"$'\n'"  - {name: $name, repo: \"$up/\", image: \"bench/${path%%:*}\", version: \"${path#*:}\"}"
done
cat > "$work/cache.yml" <<YML
offline_cache_dir: "$work/cache"
tar_file_path: "$work/airlock.tar"
download_kubespray_deps: false
yum_repos: []
pip_package_list: []
helm_chart_repos: []
misc_files: []
$list
$mirror_images
YML
"$AIRLOCK" playbook playbooks/build-offline-cache.yml -e @"$work/cache.yml" >/dev/null
# DeepOps's archive: one `docker save` tar per image (the service images too), same content.
mkdir -p "$work/deepops/docker-images"
refs=()
for i in $(seq 0 $((IMAGES - 1))); do refs+=("$up/bench/img$i:v1"); done
for s in "${services[@]}"; do local_ref=${s#*:}; refs+=("$up/bench/${local_ref#airlock-test/}"); done
for r in "${refs[@]}"; do
  f=$(echo "$r" | tr '/:' '__')
  skopeo copy -q --insecure-policy --src-tls-verify=false "docker://$r" "docker-archive:$work/deepops/docker-images/$f.tar:$r"
done
mkdir -p "$work/deepops/yum" "$work/deepops/pip" "$work/deepops/helm" "$work/deepops/misc-files"
tar -C "$work/deepops" -cf "$work/deepops.tar" .
kill "$registry_pid"; registry_pid=""
archive_mb=$(( $(stat -c %s "$work/airlock.tar") >> 20 ))

forget_images() {
  docker rm -f $(docker ps -aq --filter "name=$prefix") >/dev/null 2>&1 || true
  docker rmi -f "${refs[@]}" >/dev/null 2>&1 || true
  # The tags pushed to each run's registry, by name (removing by ID would take the
  # airlock-test/* tags of the same images with them).
  docker images --format '{{.Repository}}:{{.Tag}}' --filter 'reference=127.0.0.1:*/bench/*' | xargs -r docker rmi >/dev/null 2>&1 || true
}
# Any HTTP answer counts: DeepOps's nginx has no listings, so / answers 403.
wait_http() { until curl -s -o /dev/null "$1"; do sleep 0.1; done; }

run_airlock() {
  local dest=$1 p=($(free_port) $(free_port) $(free_port) $(free_port) $(free_port))
  cat > "$work/mirrors.yml" <<YML
tar_file_path: "$work/airlock.tar"
deepops_dest_path: "$dest"
mirror_bind_address: 127.0.0.1
deepops_mirror_host: 127.0.0.1
docker_local_registry_name: $prefix-registry
yum_mirror_name: $prefix-yum
helm_mirror_name: $prefix-helm
pip_mirror_name: $prefix-pip
nginx_misc_name: $prefix-misc
docker_local_registry_port: ${p[0]}
yum_mirror_port: ${p[1]}
helm_port: ${p[2]}
pip_port: ${p[3]}
nginx_misc_port: ${p[4]}
YML
  "$AIRLOCK" playbook playbooks/build-offline-mirrors.yml -e @"$work/cache.yml" -e @"$work/mirrors.yml" >"$work/airlock.log"
}

run_deepops() {
  local dest=$1 p=($(free_port) $(free_port) $(free_port) $(free_port) $(free_port))
  mkdir -p "$dest"
  tar -C "$dest" -xf "$work/deepops.tar"
  for f in "$dest"/docker-images/*.tar; do docker load -q -i "$f" >/dev/null; done
  local reg="$up/bench/registry:2.8.3" nginx="$up/bench/nginx:1.27-alpine"
  docker run -d -q --name "$prefix-registry" -p "127.0.0.1:${p[0]}:5000" -v "$dest/registry:/var/lib/registry" "$reg" >/dev/null
  wait_http "http://127.0.0.1:${p[0]}/v2/"
  for r in "${refs[@]}"; do
    local target="127.0.0.1:${p[0]}/${r#*/}"
    docker tag "$r" "$target"
    docker push -q "$target" >/dev/null
  done
  docker run -d -q --name "$prefix-yum" -p "127.0.0.1:${p[1]}:80" -v "$dest/yum:/usr/share/nginx/html:ro" "$nginx" >/dev/null
  docker run -d -q --name "$prefix-helm" -p "127.0.0.1:${p[2]}:8080" -e STORAGE=local -e STORAGE_LOCAL_ROOTDIR=/charts -v "$dest/helm:/charts" "$up/bench/chartmuseum-standin:v0.16.2" >/dev/null
  docker run -d -q --name "$prefix-pip" -p "127.0.0.1:${p[3]}:8080" -v "$dest/pip:/data/packages" "$up/bench/pypiserver:v2.3.2" run -p 8080 --disable-fallback /data/packages >/dev/null
  docker run -d -q --name "$prefix-misc" -p "127.0.0.1:${p[4]}:80" -v "$dest/misc-files:/usr/share/nginx/html:ro" "$nginx" >/dev/null
  wait_http "http://127.0.0.1:${p[1]}/"; wait_http "http://127.0.0.1:${p[2]}/health"
  wait_http "http://127.0.0.1:${p[3]}/simple/"; wait_http "http://127.0.0.1:${p[4]}/"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
timed() { local s e; sync; s=$(date +%s.%N); "$@"; e=$(date +%s.%N); echo "$e - $s" | bc; }
a_times=(); d_times=()
for r in $(seq 1 "$RUNS"); do
  forget_images; a_times+=("$(timed run_airlock "$work/a$r")")
  forget_images; d_times+=("$(timed run_deepops "$work/d$r")")
  forget_images; rm -rf "$work/a$r" "$work/d$r"
done
a=$(printf '%s\n' "${a_times[@]}" | median); d=$(printf '%s\n' "${d_times[@]}" | median)
echo "images: $IMAGES + 4 service images, archive ${archive_mb} MiB; runs: $RUNS; load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| airlock build-offline-mirrors.yml | $(printf '%.2f' "$a") s | 1.00 |"
echo "| tar -x + docker load + docker push + docker run (DeepOps) | $(printf '%.2f' "$d") s | $(echo "scale=2; $d / $a" | bc) |"
