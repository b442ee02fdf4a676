#!/usr/bin/env bash
# Writing the offline archive: airlock's write_archive (through the internal command
# `airlock archive create --from-manifest`, which only calls it) against GNU tar on the same
# cache tree (~1 GiB by default), wall time and peak memory (`/usr/bin/time -v`, "Maximum
# resident set size"), plus `airlock archive verify` against GNU `tar -tf` reading the same
# archive. Prints Markdown table rows for docs/benchmarks.md. Not run by the tests.
#
#   bash benches/archive.sh                     # builds airlock --release
#   SIZE_MIB=256 FORMATS="tar tar.zst" bash benches/archive.sh
#
# Env: SIZE_MIB (default 1024), FORMATS (default "tar tar.zst tar.gz"), RUNS (default 2, best
# time kept, largest memory kept), WORK (a directory on the disk to test; default a temporary
# one under target/).
#
# The tree, like an offline cache: 9/16 large image blobs (random bytes, incompressible like
# gzip layers), 3/16 RPM-sized files of 128 KiB (random), 3/16 compressible text (repodata-
# like XML), 1/16 small files of 4 KiB in nested directories. Everything is read once before
# timing, so both tools read from the page cache. GNU tar runs with the options that make its
# output deterministic too (--sort=name, owner/group 0, fixed mtime), followed by `sync FILE`
# since airlock flushes its archive to disk before renaming it into place; for .tar.zst and
# .tar.gz it pipes through `zstd -3 -T0` and `gzip -6`, and /usr/bin/time reports the largest
# of its processes, not their sum.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB=${SIZE_MIB:-1024}
FORMATS=${FORMATS:-tar tar.zst tar.gz}
RUNS=${RUNS:-2}
command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
command -v zstd >/dev/null || { echo "needs zstd (apt-get install zstd)" >&2; exit 1; }
cargo build --release --quiet
AIRLOCK=$PWD/target/release/airlock
mkdir -p target
work=${WORK:-$(mktemp -d -p "$PWD/target" archive-bench.XXXXXX)}
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
cache=$work/cache

python3 - "$cache" "$SIZE_MIB" <<'EOF'
import os, sys, random
root, size = sys.argv[1], int(sys.argv[2]) << 20
rnd = random.Random(42)
def put(rel, data):
    p = os.path.join(root, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(data)
big = size * 9 // 16
for i in range(6):
    n = big // 6
    p = os.path.join(root, f"images/blobs/sha256/{i:02x}/{'%064x' % rnd.getrandbits(256)}")
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        while n > 0:
            k = min(n, 8 << 20)
            f.write(os.urandom(k))
            n -= k
for i in range(size * 3 // 16 // (128 << 10)):
    put(f"yum/base/Packages/pkg-{i:05d}-1.0-1.el8.x86_64.rpm", os.urandom(128 << 10))
text_total = size * 3 // 16
for i in range(16):
    lines, n = [], 0
    while n < text_total // 16:
        j = rnd.randrange(1 << 20)
        l = f'<package type="rpm"><name>pkg-{j}</name><version epoch="0" ver="1.{j % 97}" rel="1.el8"/><checksum type="sha256">{j:064x}</checksum></package>\n'
        lines.append(l)
        n += len(l)
    put(f"yum/base/repodata/primary-{i:02d}.xml", "".join(lines).encode())
for i in range(size // 16 // 4096):
    put(f"files/d{i % 7}/e{i % 13}/f{i % 31}/small-{i:06d}.dat", os.urandom(2048) + bytes(2048))
EOF
"$AIRLOCK" archive scan --kind file "$cache" > "$work/manifest.json"
files=$(find "$cache" -type f | wc -l)
bytes=$(du -sb --apparent-size "$cache" | cut -f1)
mib=$(awk -v b="$bytes" 'BEGIN { printf "%.0f", b / 1048576 }')
find "$cache" -type f -print0 | xargs -0 cat > /dev/null

# Runs a command RUNS times under /usr/bin/time -v; prints "seconds max_rss_kib" (best time,
# largest RSS).
measure() {
  local best="" rss=0 t r
  for ((i = 0; i < RUNS; i++)); do
    /usr/bin/time -v -o "$work/time.txt" "$@" > /dev/null
    t=$(awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0; for (k = 1; k <= n; k++) s = s * 60 + p[k]; print s }' "$work/time.txt")
    r=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$work/time.txt")
    if [ -z "$best" ] || awk -v a="$t" -v b="$best" 'BEGIN { exit !(a < b) }'; then best=$t; fi
    if [ "$r" -gt "$rss" ]; then rss=$r; fi
  done
  echo "$best $rss"
}

row() { # what airlock_s airlock_kib gnu_s gnu_kib airlock_bytes gnu_bytes
  awk -v d="$(date +%F)" -v what="$1" -v as="$2" -v ak="$3" -v gs="$4" -v gk="$5" -v ab="$6" -v gb="$7" -v mib="$mib" -v files="$files" '
    function rate(s) { return s > 0 ? sprintf("%.0f MiB/s", mib / s) : "under 10 ms" }
    BEGIN {
    printf "| %s | %s | %d MiB, %d files | %.2f s (%s) | %.1f MiB | %.2f s (%s) | %.1f MiB | %.0f / %.0f MiB |\n",
      d, what, mib, files, as, rate(as), ak / 1024, gs, rate(gs), gk / 1024, ab / 1048576, gb / 1048576 }'
}

echo "| date | what | data | airlock | airlock max RSS | GNU tar | GNU tar max RSS | archive airlock / GNU |"
echo "|---|---|---|---|---|---|---|---|"
gnu_flags=(--sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$cache" .)
for fmt in $FORMATS; do
  a=$work/airlock.$fmt g=$work/gnu.$fmt
  case $fmt in
    tar) gnu=(tar -cf "$g" "${gnu_flags[@]}") ;;
    tar.zst) gnu=(tar -I "zstd -3 -T0" -cf "$g" "${gnu_flags[@]}") ;;
    tar.gz) gnu=(tar -I "gzip -6" -cf "$g" "${gnu_flags[@]}") ;;
    *) echo "unknown format $fmt" >&2; exit 1 ;;
  esac
  # airlock flushes the archive to disk before renaming it into place; so does GNU tar here.
  gnu=(sh -c '"$@" && sync "$0"' "$g" "${gnu[@]}")
  read -r as ak < <(measure "$AIRLOCK" archive create --cache "$cache" --from-manifest "$work/manifest.json" "$a")
  read -r gs gk < <(measure "${gnu[@]}")
  row "write .$fmt" "$as" "$ak" "$gs" "$gk" "$(stat -c %s "$a")" "$(stat -c %s "$g")"
  read -r vs vk < <(measure "$AIRLOCK" archive verify "$a")
  read -r ts tk < <(measure tar -tf "$g")
  row "verify .$fmt (GNU: tar -tf, no hashing)" "$vs" "$vk" "$ts" "$tk" "$(stat -c %s "$a")" "$(stat -c %s "$g")"
  rm -f "$a" "$g"
done
