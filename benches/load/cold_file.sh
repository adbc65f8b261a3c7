#!/usr/bin/env bash
# Others' latency while a file that is not in the page cache is sent: keel
# with Config::cold_file_readahead on and off, the disk throttled.
#
#   benches/load/cold_file.sh                  # 200 MiB, disk at 50 MB/s, 2 rounds
#   FILE_MIB=100 READ_BPS=20000000 ROUNDS=3 benches/load/cold_file.sh
#
# A fast virtual disk hides what a worker waits for, so the run is made in
# a blkio cgroup (v1) whose reads from the file's block device are capped at
# READ_BPS bytes/s (default 50 MB/s, a spinning disk's pace). Needs root and
# the blkio controller; without them it runs unthrottled and says so.
# The file is made once in a temporary directory on the disk under test
# (TMPDIR), its pages dropped before each run (posix_fadvise DONTNEED).
# The binary (benches/src/bin/cold_file.rs) prints, per run: the download's
# time, the read-aheads keel counted, and the latency of GET /plaintext
# sent one at a time on another connection during the download.
#
# Environment: FILE_MIB (200), READ_BPS (50000000), ROUNDS (2), SKIP_BUILD=1.
# Writes benches/results/cold-file-DATE-COMMIT.txt.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
FILE_MIB=${FILE_MIB:-200}
READ_BPS=${READ_BPS:-50000000}
ROUNDS=${ROUNDS:-2}
target=${CARGO_TARGET_DIR:-$root/target}/release

[ "${SKIP_BUILD:-0}" = 1 ] || cargo build --release -q -p keel-benches --bin cold_file

dir=$(mktemp -d)
group=
cleanup() {
    rm -rf "$dir"
    if [ -n "$group" ]; then
        # Move this shell back out before removing the group.
        echo $$ >/sys/fs/cgroup/blkio/cgroup.procs 2>/dev/null || true
        rmdir "$group" 2>/dev/null || true
    fi
}
trap cleanup EXIT
file=$dir/cold.bin
head -c "$((FILE_MIB * 1024 * 1024))" /dev/urandom >"$file"
sync "$file"

throttle="none (no blkio cgroup v1 or not root)"
device=$(stat -c '%d' "$file")
major=$((device >> 8))
minor=$((device & 255))
if [ "$(id -u)" = 0 ] && [ -d /sys/fs/cgroup/blkio ]; then
    # The whole disk, not the partition: the throttle applies to a device.
    disk=$(basename "$(readlink -f "/sys/dev/block/$major:$minor")")
    if [ -f "/sys/class/block/$disk/partition" ]; then
        disk=$(basename "$(dirname "$(readlink -f "/sys/class/block/$disk")")")
    fi
    numbers=$(cat "/sys/class/block/$disk/dev")
    group=/sys/fs/cgroup/blkio/keel-cold-$$
    mkdir "$group"
    echo "$numbers $READ_BPS" >"$group/blkio.throttle.read_bps_device"
    echo $$ >"$group/cgroup.procs"
    throttle="$READ_BPS bytes/s on $disk ($numbers)"
fi

commit=$(git rev-parse --short HEAD)
out=benches/results/cold-file-$(date -u +%F)-$commit.txt
{
    echo "# keel: others' latency during a cold file download"
    echo
    echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), commit: $commit, kernel $(uname -r)"
    echo "file: $FILE_MIB MiB on $(df -T "$dir" | awk 'NR==2 {print $2}'), read throttle: $throttle"
    echo "command: FILE_MIB=$FILE_MIB READ_BPS=$READ_BPS ROUNDS=$ROUNDS benches/load/cold_file.sh"
    echo
    "$target/cold_file" --file "$file" --rounds "$ROUNDS"
    "$target/cold_file" --file "$file" --rounds 1 --warm
} | tee "$out"
echo "written to $out"
