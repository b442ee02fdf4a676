#!/usr/bin/env bash
# Mirroring a Yum repository: airlock's `yum_sync` module (a one-task playbook run by
# `airlock playbook`) against `dnf reposync --download-metadata`, on the same repository of
# 2000 real RPMs (rpmbuild, indexed by createrepo_c) served by nginx on 127.0.0.1. Wall time
# and peak memory (`/usr/bin/time -v`, "Maximum resident set size"), cold (empty destination)
# and warm (the same command again on the full destination). Prints Markdown table rows for
# docs/benchmarks.md. Not run by the tests.
#
#   bash benches/yum.sh                # builds airlock --release; installs what is missing
#   PACKAGES=500 RUNS=5 bash benches/yum.sh
#
# Env: PACKAGES (default 2000), RUNS (default 3; the median is kept, the largest memory),
# CONCURRENCY (default 8: airlock's default `concurrency`, given to dnf as
# max_parallel_downloads, whose own default is 3).
#
# The RPMs are noarch subpackages of a few specs built in parallel, each holding one file of
# 4 to 203 KiB of random bytes (so about 200 MiB in all), with a zstd payload; they are kept
# in target/bench-yum/ so reruns skip the build. Every run, each tool in turn: cold, into an
# empty directory (dnf with an empty cache directory), then warm, the same command again (dnf
# keeping the cache its cold run filled, as a user's rerun would). `sync` runs before each
# timed command, untimed, so neither pays for the other's writeback; both flush every package
# to disk (fsync) themselves.
set -euo pipefail
cd "$(dirname "$0")/.."
PACKAGES=${PACKAGES:-2000}
RUNS=${RUNS:-3}
CONCURRENCY=${CONCURRENCY:-8}

need=()
command -v rpmbuild >/dev/null || need+=(rpm)
command -v createrepo_c >/dev/null || need+=(createrepo-c)
command -v dnf >/dev/null || need+=(dnf)
[ -f /usr/lib/python3/dist-packages/dnf-plugins/reposync.py ] || need+=(dnf-plugins-core)
[ -x /usr/sbin/nginx ] || need+=(nginx)
[ -x /usr/bin/time ] || need+=(time)
command -v curl >/dev/null || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { echo "needs ${need[*]}: run as root, or apt-get install them" >&2; exit 1; }
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

cargo build --release --quiet
AIRLOCK=$PWD/target/release/airlock
mkdir -p target/bench-yum
work=$(mktemp -d -p "$PWD/target/bench-yum" run.XXXXXX)
nginx_pid=""
cleanup() {
  [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# The repository, built once per package count (bump the suffix when the specs change).
repo=$PWD/target/bench-yum/repo-$PACKAGES-v1
if [ ! -f "$repo/repodata/repomd.xml" ]; then
  build=$(mktemp -d -p "$PWD/target/bench-yum" build.XXXXXX)
  chunk=250
  python3 - "$build" "$PACKAGES" "$chunk" <<'EOF'
import os, sys
build, total, chunk = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for s, start in enumerate(range(0, total, chunk)):
    end = min(start + chunk, total)
    top = os.path.join(build, f"top{s}")
    os.makedirs(os.path.join(top, "SPECS"))
    l = [f"Name: bench-yum-{s}", "Version: 1", "Release: 1", "Summary: airlock benchmark",
         "License: MIT", "BuildArch: noarch", "AutoReqProv: no", "%description", "Benchmark.", ""]
    for i in range(start, end):
        n = f"bench-pkg-{i:04d}"
        l += [f"%package -n {n}", f"Summary: benchmark package {i}", f"Version: 1.{i % 7}",
              f"Release: {1 + i % 3}.el9", f"%description -n {n}", f"Package {i} of airlock's Yum benchmark.", ""]
    l += ["%install",
          f"for i in $(seq {start} {end - 1}); do d=%{{buildroot}}/usr/share/bench-pkg-$(printf %04d $i); "
          "mkdir -p $d; head -c $(( (4 + (i * 7919) % 200) * 1024 )) /dev/urandom > $d/data; done", ""]
    for i in range(start, end):
        l += [f"%files -n bench-pkg-{i:04d}", f"/usr/share/bench-pkg-{i:04d}", ""]
    with open(os.path.join(top, "SPECS", "bench.spec"), "w") as f:
        f.write("\n".join(l) + "\n")
EOF
  echo "building $PACKAGES RPMs in $build (once)..." >&2
  ls -d "$build"/top* | xargs -P "$(nproc)" -I{} rpmbuild -bb --quiet --define "_topdir {}" \
    --define "_binary_payload w3.zstdio" --define "__os_install_post %{nil}" --define "_build_id_links none" {}/SPECS/bench.spec
  mkdir -p "$build/repo/Packages"
  mv "$build"/top*/RPMS/noarch/*.rpm "$build/repo/Packages/"
  createrepo_c --quiet "$build/repo"
  rm -rf "$repo"
  mv "$build/repo" "$repo"
  rm -rf "$build"
fi
rpms=$(find "$repo/Packages" -name '*.rpm' | wc -l)
mib=$(du -sb --apparent-size "$repo" | awk '{ printf "%.0f", $1 / 1048576 }')
find "$repo" -type f -print0 | xargs -0 cat > /dev/null

# nginx, as it would serve a mirror: sendfile, keep-alive, no access log.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$work/nginx"
cat > "$work/nginx/nginx.conf" <<EOF
daemon off;
user root;
worker_processes auto;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  default_type application/octet-stream;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  server { listen 127.0.0.1:$port; root $repo; }
}
EOF
/usr/sbin/nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" &
nginx_pid=$!
url=http://127.0.0.1:$port
for _ in $(seq 100); do curl -sf -o /dev/null "$url/repodata/repomd.xml" && break; sleep 0.1; done
curl -sf -o /dev/null "$url/repodata/repomd.xml" || { cat "$work/nginx/error.log" >&2; exit 1; }

# The playbook for the trees of run $1; prints its path.
playbook() {
  cat > "$work/run$1/sync.yml" <<EOF
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: mirror the benchmark repository
      yum_sync:
        repos:
          - { name: bench, baseurl: "$url/" }
        dest: $work/run$1/airlock
        cache_dir: $work/run$1
        concurrency: $CONCURRENCY
EOF
  echo "$work/run$1/sync.yml"
}
# dnf with its own configuration only: no host repositories, logs and state under $work.
mkdir -p "$work/dnf/repos.d"
cat > "$work/dnf/dnf.conf" <<EOF
[main]
gpgcheck=0
reposdir=$work/dnf/repos.d
logdir=$work/dnf/log
persistdir=$work/dnf/persist
max_parallel_downloads=$CONCURRENCY
EOF
# dnf's command for the trees of run $1, in the array `dnf`.
dnf_args() {
  dnf=(dnf -q -c "$work/dnf/dnf.conf" --setopt=reposdir="$work/dnf/repos.d" --setopt=cachedir="$work/run$1/dnf-cache" --releasever=9
    --repofrompath=bench,"$url/" --repo=bench reposync --download-metadata --norepopath -p "$work/run$1/dnf")
}

# Runs "$@" once under /usr/bin/time -v, after a sync; prints "seconds max_rss_kib".
measure() {
  sync
  local t0 t1
  t0=$(date +%s.%N)
  /usr/bin/time -v -o "$work/time.txt" "$@" > "$work/out.txt" 2>&1 || { cat "$work/out.txt" >&2; exit 1; }
  t1=$(date +%s.%N)
  echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }') $(awk -F': ' '/Maximum resident set size/ { print $2 }' "$work/time.txt")"
}

declare -a ac aw dc dw acr awr dcr dwr
for ((r = 0; r < RUNS; r++)); do
  # New directories each run, nothing deleted until the end: on ext4, creating files just
  # after deleting thousands costs more (the allocator skips recently freed inodes).
  mkdir -p "$work/run$r"
  pb=$(playbook "$r")
  dnf_args "$r"
  read -r ac[r] acr[r] < <(measure "$AIRLOCK" playbook -i localhost, "$pb")
  read -r dc[r] dcr[r] < <(measure "${dnf[@]}")
  read -r aw[r] awr[r] < <(measure "$AIRLOCK" playbook -i localhost, "$pb")
  grep -q "changed=0" "$work/out.txt" || { cat "$work/out.txt" >&2; echo "airlock's warm run changed something" >&2; exit 1; }
  read -r dw[r] dwr[r] < <(measure "${dnf[@]}")
  echo "run $((r + 1)): cold airlock ${ac[r]} s, dnf ${dc[r]} s; warm airlock ${aw[r]} s, dnf ${dw[r]} s" >&2
done

# Sanity: both trees hold the same RPMs, byte for byte, and the same metadata files.
last=$work/run$((RUNS - 1))
a_rpms=$(cd "$last/airlock/bench" && find . -name '*.rpm' | sort)
d_rpms=$(cd "$last/dnf" && find . -name '*.rpm' | sort)
echo "RPMs: upstream $rpms, airlock $(grep -c . <<< "$a_rpms"), dnf $(grep -c . <<< "$d_rpms")" >&2
[ "$a_rpms" = "$d_rpms" ] || { echo "the two trees hold different RPM files" >&2; exit 1; }
diff -rq "$last/airlock/bench/Packages" "$last/dnf/Packages" >&2 || { echo "RPM contents differ" >&2; exit 1; }
diff -rq "$last/airlock/bench/repodata" "$last/dnf/repodata" >&2 || { echo "repodata differs" >&2; exit 1; }

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
largest() { printf '%s\n' "$@" | sort -g | tail -1; }
row() { # what airlock_s airlock_kib dnf_s dnf_kib
  awk -v d="$(date +%F)" -v what="$1" -v as="$2" -v ak="$3" -v ds="$4" -v dk="$5" -v rpms="$rpms" -v mib="$mib" 'BEGIN {
    printf "| %s | %s | %d RPMs, %d MiB | %.2f s | %.1f MiB | %.2f s | %.1f MiB | %.1fx |\n",
      d, what, rpms, mib, as, ak / 1024, ds, dk / 1024, ds / as }'
}
echo "| date | run | repository | airlock | airlock max RSS | dnf reposync | dnf max RSS | dnf / airlock |"
echo "|---|---|---|---|---|---|---|---|"
row "cold (empty destination)" "$(median "${ac[@]}")" "$(largest "${acr[@]}")" "$(median "${dc[@]}")" "$(largest "${dcr[@]}")"
row "warm (all in place)" "$(median "${aw[@]}")" "$(largest "${awr[@]}")" "$(median "${dw[@]}")" "$(largest "${dwr[@]}")"
echo "load average after the runs: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
