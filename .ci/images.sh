# Shell shared by the scripts that build test images (.ci/build-service-images,
# .ci/build-node-image); sourced, not run. The caller sets SCRIPT (its name, for messages).
# Images are made without a registry: a tree on disk, `docker import`ed as one layer, labelled
# io.airlock.inputs=<hash of what it is built from> so that an unchanged image is not rebuilt.

start=$SECONDS
say() { echo "$SCRIPT: [$((SECONDS - start))s] $*"; }
die() { echo "$SCRIPT: $*" >&2; exit 1; }
need_root() {
  [ "$(id -u)" -eq 0 ] || die "$1 needs root: run \`sudo bash .ci/$SCRIPT\` once"
}
sha() { sha256sum | cut -c1-64; }

need_docker() {
  docker info >/dev/null 2>&1 || die "Docker Engine is not reachable (\`docker info\` fails): start it, or run as a user of the docker group"
  [ "$(uname -m)" = x86_64 ] || die "the images are built for linux/amd64; this machine is $(uname -m)"
}

# Installs Debian packages the host lacks (root), quietly unless apt fails.
apt_install() {  # PACKAGE...
  local out
  need_root "installing $*"
  apt-get update -qq
  if ! out=$(DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" 2>&1); then
    echo "$out" >&2
    die "cannot install $*"
  fi
}

need_mmdebstrap() {
  command -v mmdebstrap >/dev/null || apt_install mmdebstrap
}

tree_hash() {  # DIR: a hash of every path, type, mode, link target and content under DIR
  (
    cd "$1"
    find . -printf '%P\t%y\t%m\t%l\n' | LC_ALL=C sort
    find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum
  ) | sha
}

up_to_date() {  # TAG INPUTS; remembers the image TAG names now, to remove once replaced
  previous_id=$(docker image inspect --format '{{.Id}}' "$1" 2>/dev/null || true)
  [ "$(docker image inspect --format '{{ index .Config.Labels "io.airlock.inputs" }}' "$1" 2>/dev/null)" = "$2" ]
}

# Removes the image a rebuilt TAG replaced (now untagged, unless a container still uses it).
drop_previous() {
  if [ -n "${previous_id:-}" ]; then docker image rm "$previous_id" >/dev/null 2>&1 || true; fi
}
