#!/usr/bin/env bash
# The Raspberry Pi platform check: edgeseg's wheel installed runtime-only in an arm64 Debian 12
# (Bookworm, Python 3.11: what 64-bit Raspberry Pi OS is built on) root filesystem run through
# qemu-user-static, compared with the x86 host on the same model and data.
#
#   sudo scripts/check_arm64.sh [--pi 4|5] [--cache DIR] [--host-python PY] [--keep-work]
#
# What it proves (exit 0 only when every check passed):
#   1. the wheel built from this checkout installs with pip in the arm64 chroot, runtime-only
#      (no extras); TensorFlow is absent and every installed wheel is aarch64 or pure Python;
#   2. `edgeseg info`, `eval`, `run` (video file, headless, --save-masks) and `bench` work there on
#      an int8 model trained and converted on the host;
#   3. the ARM LiteRT/XNNPACK int8 kernels agree with x86: eval mIoU equal within 0.005, and class
#      maps equal on >= 99.9% of pixels for the very same saved input tensors.
# Emulated timings are printed only labelled "emulated (qemu), not Pi figures".
#
# Needs root (debootstrap, chroot, mounts), Debian's debootstrap, qemu-user-static and
# binfmt-support (installed with apt-get when missing), and the host venv with edgeseg[train]
# (default: .venv/bin/python of this checkout). The root filesystem is cached outside the
# repository in $EDGESEG_ARM64_CACHE (default /var/cache/edgeseg-arm64, about 500 MB) and reused;
# delete that folder to rebuild it. If the Debian mirror named by the host's apt sources or the pip
# index cannot be reached, it prints "SKIPPED: ..." and exits 0; any functional failure exits 1.
#
# Environment: EDGESEG_ARM64_PI (4|5, default 4), EDGESEG_ARM64_CACHE, EDGESEG_ARM64_MIRROR
# (overrides the apt sources), EDGESEG_ARM64_QEMU_CPU (overrides the CPU model qemu emulates).
set -euo pipefail

PI="${EDGESEG_ARM64_PI:-4}"
CACHE="${EDGESEG_ARM64_CACHE:-/var/cache/edgeseg-arm64}"
HOST_PY=""
KEEP_WORK=0
SUITE=bookworm
PACKAGES=python3,python3-venv,python3-pip,ca-certificates,libgl1,libglib2.0-0
REPO="$(cd "$(dirname "$0")/.." && pwd)"
T_START=$SECONDS

usage() { sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --pi) PI="${2:?--pi needs 4 or 5}"; shift 2 ;;
        --pi=*) PI="${1#*=}"; shift ;;
        --cache) CACHE="${2:?--cache needs a folder}"; shift 2 ;;
        --cache=*) CACHE="${1#*=}"; shift ;;
        --host-python) HOST_PY="${2:?--host-python needs a python}"; shift 2 ;;
        --keep-work) KEEP_WORK=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "check_arm64: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

case "$PI" in
    4) QEMU_CPU_MODEL=cortex-a72; PI_NAME="Raspberry Pi 4 (Cortex-A72)" ;;
    5) QEMU_CPU_MODEL=cortex-a76; PI_NAME="Raspberry Pi 5 (Cortex-A76)" ;;
    *) echo "check_arm64: --pi must be 4 or 5, not $PI" >&2; exit 2 ;;
esac
QEMU_CPU_MODEL="${EDGESEG_ARM64_QEMU_CPU:-$QEMU_CPU_MODEL}"
EMU="[emulated (qemu), not Pi figures]"

say() { printf '\n==> %s\n' "$*"; }
fail() { printf '\nFAIL: %s\n' "$*" >&2; exit 1; }
skip() {
    printf '\n%s\n  SKIPPED: %s\n  The arm64 check did NOT run; nothing about arm64 was verified.\n%s\n' \
        "################################################################################" "$*" \
        "################################################################################"
    exit 0
}
declare -a TIMES=()
phase_start() { PHASE_NAME="$1"; PHASE_T0=$SECONDS; say "$1"; }
phase_end() { TIMES+=("$(printf '%-44s %4ds' "$PHASE_NAME" $((SECONDS - PHASE_T0)))"); }

[[ $EUID -eq 0 ]] || fail "needs root (debootstrap, chroot, mounts): sudo $0 $*"
[[ "$CACHE" = /* && "$CACHE" != / ]] || fail "--cache must be an absolute folder, not '$CACHE'"
case "$CACHE/" in "$REPO"/*) fail "the cache $CACHE must live outside the repository" ;; esac

# === Host python: the venv with edgeseg[train] that trains and converts the reference model ===
if [[ -z "$HOST_PY" ]]; then
    if [[ -x "$REPO/.venv/bin/python" ]]; then HOST_PY="$REPO/.venv/bin/python"; else HOST_PY=python3; fi
fi
HOST_EDGESEG="$(dirname "$(command -v "$HOST_PY")")/edgeseg"
[[ -x "$HOST_EDGESEG" ]] || fail "no edgeseg command beside $HOST_PY: pip install -e '.[train]' first"
"$HOST_PY" -c "import edgeseg, tensorflow" 2>/dev/null \
    || fail "$HOST_PY cannot import edgeseg and tensorflow: pip install -e '.[train]' first"

# === Where apt and pip go: the mirror the host's apt sources name, the index its pip config names ===
detect_mirror() {
    if [[ -n "${EDGESEG_ARM64_MIRROR:-}" ]]; then echo "$EDGESEG_ARM64_MIRROR"; return; fi
    local found=""
    if compgen -G "/etc/apt/sources.list.d/*.sources" >/dev/null; then
        # deb822 stanzas: the first URI of an enabled "deb" stanza whose Suites include $SUITE.
        found="$(awk -v suite="$SUITE" 'BEGIN { RS = ""; FS = "\n" }
            { uri = ""; ok_suite = 0; ok_type = 0; enabled = 1
              for (i = 1; i <= NF; i++) {
                  line = $i; if (line ~ /^[ \t]*#/) continue
                  if (line ~ /^URIs:/) { split(substr(line, 6), u, " "); uri = u[1]; if (uri == "") uri = u[2] }
                  if (line ~ /^Suites:/ && (" " substr(line, 8) " ") ~ (" " suite " ")) ok_suite = 1
                  if (line ~ /^Types:/ && line ~ /[ \t]deb([ \t]|$)/) ok_type = 1
                  if (line ~ /^Enabled:[ \t]*no/) enabled = 0 }
              if (uri != "" && ok_suite && ok_type && enabled) { print uri; exit } }' \
            /etc/apt/sources.list.d/*.sources 2>/dev/null || true)"
    fi
    if [[ -z "$found" ]]; then
        # one-line style: deb [options] URI SUITE components
        found="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
            | awk -v suite="$SUITE" '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
                                      if ($(i + 1) == suite) { print $i; exit } }' || true)"
    fi
    echo "${found:-http://deb.debian.org/debian}"
}
MIRROR="$(detect_mirror)"
MIRROR="${MIRROR%/}"
MIRROR_FROM="from the host's apt sources"
[[ -n "${EDGESEG_ARM64_MIRROR:-}" ]] && MIRROR_FROM="from EDGESEG_ARM64_MIRROR"

pip_config() { "$HOST_PY" -m pip config list 2>/dev/null || true; }
INDEX_URL="$(pip_config | sed -n "s/^\(global\|install\|:env:\)\.index-url='\(.*\)'$/\2/p" | tail -1)"
INDEX_URL="${INDEX_URL:-https://pypi.org/simple}"
INDEX_URL="${INDEX_URL%/}"

# reachable URL: 0 when an HTTP(S) or file URL answers (the host's CA bundle, proxies apply).
reachable() {
    "$HOST_PY" - "$1" <<'EOF'
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=20) as r:
        r.read(1)
except Exception as exc:  # any failure to fetch = not reachable
    print(f"  {sys.argv[1]}: {type(exc).__name__}: {exc}", file=sys.stderr)
    sys.exit(1)
EOF
}

phase_start "network: Debian mirror $MIRROR, pip index $INDEX_URL"
reachable "$MIRROR/dists/$SUITE/Release" \
    || skip "the Debian mirror $MIRROR ($MIRROR_FROM) cannot be reached"
reachable "$INDEX_URL/pip/" || skip "the pip index $INDEX_URL cannot be reached"
echo "both reachable"
phase_end

# === Tools: debootstrap, qemu-user-static, binfmt_misc with the F (fix binary) flag ===
phase_start "tools: debootstrap, qemu-user-static, binfmt_misc"
missing=()
command -v debootstrap >/dev/null || missing+=(debootstrap)
[[ -x /usr/bin/qemu-aarch64-static ]] || missing+=(qemu-user-static)
command -v update-binfmts >/dev/null || missing+=(binfmt-support)
if [[ ${#missing[@]} -gt 0 ]]; then
    command -v apt-get >/dev/null || fail "install ${missing[*]} (no apt-get on this machine)"
    echo "installing ${missing[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt_get() { apt-get -o DPkg::Lock::Timeout=900 -y -q "$@"; }
    apt_get install --no-install-recommends "${missing[@]}" >/dev/null \
        || { apt_get update >/dev/null && apt_get install --no-install-recommends "${missing[@]}" >/dev/null; } \
        || fail "apt-get install ${missing[*]} failed"
fi
BINFMT=/proc/sys/fs/binfmt_misc
[[ -e $BINFMT/register ]] || mount -t binfmt_misc binfmt_misc $BINFMT \
    || fail "cannot mount binfmt_misc (a container needs --privileged)"
register_aarch64() {
    # The F flag opens the interpreter now, so it works inside the chroot without a copy there.
    printf '%s' ':qemu-aarch64:M::\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:/usr/bin/qemu-aarch64-static:OCF' \
        > $BINFMT/register
}
if [[ ! -e $BINFMT/qemu-aarch64 ]]; then
    update-binfmts --enable qemu-aarch64 2>/dev/null || true
    [[ -e $BINFMT/qemu-aarch64 ]] || register_aarch64 || fail "cannot register qemu-aarch64 with binfmt_misc"
fi
if ! grep -q '^flags:.*F' $BINFMT/qemu-aarch64; then
    echo "qemu-aarch64 is registered without the F flag; registering it again with F"
    echo -1 > $BINFMT/qemu-aarch64
    register_aarch64 || fail "cannot register qemu-aarch64 with binfmt_misc"
fi
grep -q '^enabled' $BINFMT/qemu-aarch64 || fail "binfmt_misc qemu-aarch64 is disabled"
grep -E '^(interpreter|flags)' $BINFMT/qemu-aarch64 | sed 's/^/  binfmt /'
phase_end

# === The arm64 root filesystem (cached; rebuilt only when missing, partial or of other packages) ===
ROOTFS="$CACHE/rootfs-$SUITE-arm64"
STAMP="$ROOTFS/.edgeseg-rootfs"
STAMP_TEXT="debootstrap --arch=arm64 --variant=minbase --include=$PACKAGES $SUITE"
mounted_under() { findmnt -rn -o TARGET | grep -q -F -e "$1/" ; }
mkdir -p "$CACHE"
phase_start "rootfs: $ROOTFS"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$STAMP_TEXT" ]]; then
    echo "reusing the cached root filesystem ($(du -sh "$ROOTFS" 2>/dev/null | cut -f1))"
else
    mounted_under "$CACHE" && fail "something is still mounted under $CACHE; unmount it first"
    echo "building it (a few minutes): $STAMP_TEXT $MIRROR"
    rm -rf "$ROOTFS.partial" "$ROOTFS"
    if ! nice debootstrap --arch=arm64 --variant=minbase --include="$PACKAGES" \
        "$SUITE" "$ROOTFS.partial" "$MIRROR" > "$CACHE/debootstrap.log" 2>&1; then
        tail -20 "$CACHE/debootstrap.log"
        fail "debootstrap failed (log: $CACHE/debootstrap.log)"
    fi
    rm -f "$ROOTFS.partial"/var/cache/apt/archives/*.deb
    mv "$ROOTFS.partial" "$ROOTFS"
    echo "$STAMP_TEXT" > "$STAMP"
    echo "built ($(du -sh "$ROOTFS" | cut -f1))"
fi
phase_end

# === Work folder and mounts; everything is unmounted on exit, whatever happens ===
WORK="$(mktemp -d /tmp/edgeseg-arm64.XXXXXX)"
declare -a MOUNTS=()
cleanup() {
    local status=$? i stuck=0
    for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
        umount "${MOUNTS[i]}" 2>/dev/null || umount -l "${MOUNTS[i]}" 2>/dev/null \
            || { echo "cannot unmount ${MOUNTS[i]}" >&2; stuck=1; }
    done
    if mounted_under "$ROOTFS"; then
        echo "still mounted under $ROOTFS:" >&2; findmnt -rn -o TARGET | grep -F "$ROOTFS/" >&2
        stuck=1
    fi
    if [[ $stuck -eq 0 && $KEEP_WORK -eq 0 ]]; then rm -rf "$WORK"; fi
    [[ $KEEP_WORK -eq 1 ]] && echo "work folder kept: $WORK"
    [[ $stuck -eq 1 && $status -eq 0 ]] && status=1
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

bind() {  # bind SRC DEST [ro]
    mount --bind "$1" "$2" && MOUNTS+=("$2")
    if [[ "${3:-}" == ro ]]; then mount -o remount,bind,ro "$2"; fi
}

cpuinfo() {  # an ARM /proc/cpuinfo: LiteRT segfaults in allocate_tensors() reading x86's under qemu
    local part variant revision features model i
    if [[ $PI == 5 ]]; then
        part=0xd0b variant=0x4 revision=1 model="Raspberry Pi 5 Model B Rev 1.0"
        features="fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp"
    else
        part=0xd08 variant=0x0 revision=3 model="Raspberry Pi 4 Model B Rev 1.4"
        features="fp asimd evtstrm crc32 cpuid"
    fi
    for i in 0 1 2 3; do
        printf 'processor\t: %s\nBogoMIPS\t: 108.00\nFeatures\t: %s\nCPU implementer\t: 0x41\n' "$i" "$features"
        printf 'CPU architecture: 8\nCPU variant\t: %s\nCPU part\t: %s\nCPU revision\t: %s\n\n' "$variant" "$part" "$revision"
    done
    printf 'Revision\t: %s\nSerial\t\t: 10000000edge5e90\nModel\t\t: %s\n' \
        "$([[ $PI == 5 ]] && echo d04170 || echo d03114)" "$model"
}

phase_start "chroot: mounts, pip configuration, CA bundle"
R="$ROOTFS"
cpuinfo > "$WORK/cpuinfo"
mkdir -p "$R/work"
mount -t proc proc "$R/proc" && MOUNTS+=("$R/proc")
bind "$WORK/cpuinfo" "$R/proc/cpuinfo" ro
mount -t sysfs -o ro sysfs "$R/sys" && MOUNTS+=("$R/sys")
bind /dev "$R/dev"
bind "$WORK" "$R/work"
cp -L /etc/resolv.conf "$R/etc/resolv.conf" 2>/dev/null || true

# pip: the host's config files, its PIP_* / proxy environment, its CA bundle, and any local
# folders they name (file:// indexes, find-links) mounted read-only at the same paths.
rm -rf "$R/etc/pip.conf" "$R/etc/xdg/pip" "$R/root/.config/pip" "$R/root/.pip"
for f in /etc/pip.conf /etc/xdg/pip/pip.conf "$HOME/.config/pip/pip.conf" "$HOME/.pip/pip.conf" \
    "${PIP_CONFIG_FILE:-}"; do
    [[ -n "$f" && -f "$f" ]] || continue
    dest="$f"; case "$f" in "$HOME"/*) dest="/root/${f#"$HOME"/}" ;; esac
    install -D -m 644 "$f" "$R$dest" && echo "  pip config $f -> chroot:$dest"
done
declare -a CHROOT_ENV=(HOME=/root LANG=C.UTF-8 "QEMU_CPU=$QEMU_CPU_MODEL"
    PATH=/work/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)
while IFS= read -r name; do
    CHROOT_ENV+=("$name=${!name}")
done < <(compgen -e | grep -E '^(PIP_[A-Z_]+|https?_proxy|HTTPS?_PROXY|no_proxy|NO_PROXY|SSL_CERT_FILE|REQUESTS_CA_BUNDLE)$' || true)
declare -A SEEN=()
pip_values="$(pip_config | sed -n "s/^[^=]*='\(.*\)'$/\1/p"; compgen -e | grep '^PIP_' | while read -r n; do echo "${!n}"; done)"
for word in $pip_values; do
    path="${word#file://}"
    [[ "$path" = /* && -e "$path" && -z "${SEEN[$path]:-}" ]] || continue
    SEEN[$path]=1
    if [[ -f "$path" ]]; then  # a CA bundle or a config file
        install -D -m 644 "$path" "$R$path" && echo "  copied $path"
    else
        [[ "$(basename "$path")" == simple ]] && path="$(dirname "$path")"  # links go ../../files
        findmnt -rn "$R$path" >/dev/null && continue
        mkdir -p "$R$path" && bind "$path" "$R$path" ro && echo "  mounted $path read-only"
    fi
done
for ca in "${SSL_CERT_FILE:-}" "${REQUESTS_CA_BUNDLE:-}" "${PIP_CERT:-}"; do
    [[ -n "$ca" && -f "$ca" && -z "${SEEN[$ca]:-}" ]] || continue
    SEEN[$ca]=1
    install -D -m 644 "$ca" "$R$ca" && echo "  copied $ca"
done
in_chroot() { QEMU_CPU="$QEMU_CPU_MODEL" chroot "$R" /usr/bin/env -i "${CHROOT_ENV[@]}" "$@"; }
label() { sed -u "s/^/  $1 /"; }
[[ "$(in_chroot uname -m)" == aarch64 ]] || fail "the chroot does not run arm64 binaries"
echo "  $(in_chroot python3 --version) on $(in_chroot uname -m), qemu CPU $QEMU_CPU_MODEL, /proc/cpuinfo of a $PI_NAME"
phase_end

# === Host: wheel, reference model (trained and converted here), data, video, input tensors ===
phase_start "host: build the wheel, train + convert a small int8 model"
mkdir -p "$WORK/src" "$WORK/dist"
if git -C "$REPO" rev-parse --git-dir >/dev/null 2>&1; then
    git -C "$REPO" ls-files -z --cached --others --exclude-standard \
        | tar -C "$REPO" --null --ignore-failed-read -T - -cf - 2>/dev/null | tar -C "$WORK/src" -xf -
else
    tar -C "$REPO" --exclude=.venv --exclude=.git -cf - . | tar -C "$WORK/src" -xf -
fi
"$HOST_PY" -m pip wheel -q --no-deps --no-build-isolation -w "$WORK/dist" "$WORK/src" 2>/dev/null \
    || "$HOST_PY" -m pip wheel -q --no-deps -w "$WORK/dist" "$WORK/src" \
    || fail "building the wheel failed"
WHEEL="$(ls "$WORK"/dist/edgeseg-*.whl)"
echo "  wheel: $(basename "$WHEEL")"
cp "$REPO/scripts/arm64_compare.py" "$WORK/arm64_compare.py"
export TF_CPP_MIN_LOG_LEVEL=2
nice "$HOST_PY" -c "from edgeseg.data.synthetic import generate_synthetic_dataset as g
g('$WORK/data', count_train=48, count_val=8, size=(64, 64), seed=0)"
nice "$HOST_EDGESEG" train "$WORK/data" --out "$WORK/train" --size 64 --epochs 10 --depth 3 \
    --filters 8 --batch 8 --seed 0 > "$WORK/train.log" 2>&1 \
    || { tail -20 "$WORK/train.log"; fail "edgeseg train failed on the host"; }
nice "$HOST_EDGESEG" convert "$WORK/train/model.keras" --out "$WORK/model_int8.tflite" \
    --calib "$WORK/data/train/images" --calib-count 16 > "$WORK/convert.log" 2>&1 \
    || { tail -20 "$WORK/convert.log"; fail "edgeseg convert failed on the host"; }
echo "  model: model_int8.tflite ($(stat -c %s "$WORK/model_int8.tflite") bytes)"
HC() { nice "$HOST_PY" "$WORK/arm64_compare.py" "$@"; }
HC inputs "$WORK/model_int8.tflite" "$WORK/data/val/images" "$WORK/inputs.npy"
HC video "$WORK/data/val/images" "$WORK/video.avi"
HC classes "$WORK/model_int8.tflite" "$WORK/inputs.npy" "$WORK/classes_x86.npy"
nice "$HOST_EDGESEG" eval "$WORK/model_int8.tflite" --data "$WORK/data/val" --threads 1 \
    --out "$WORK/eval_x86.json" > "$WORK/eval_x86.log" 2>&1 \
    || { cat "$WORK/eval_x86.log"; fail "edgeseg eval failed on the host"; }
nice "$HOST_EDGESEG" run "$WORK/model_int8.tflite" --source "$WORK/video.avi" --headless \
    --threads 1 --save-masks "$WORK/masks_x86" > "$WORK/run_x86.log" 2>&1 \
    || { cat "$WORK/run_x86.log"; fail "edgeseg run failed on the host"; }
phase_end

# === arm64: install runtime-only, then every command ===
declare -a RESULTS=()
FAILED=0
check() {  # check NAME CMD...: run one check, record it, keep going
    local name="$1"; shift
    if "$@"; then RESULTS+=("ok    $name"); else RESULTS+=("FAIL  $name"); FAILED=1; fi
}

phase_start "arm64: pip install the wheel (runtime only, no extras)"
in_chroot python3 -m venv /work/venv || fail "python3 -m venv failed in the chroot"
# (pip warns for every package missing from a local file:// index of the host's config: dropped)
in_chroot /work/venv/bin/pip install -q "/work/dist/$(basename "$WHEEL")" 2>&1 \
    | { grep -v "is ignored: it is neither a file nor a directory" || true; } | label "arm64|" \
    || fail "pip install of the wheel failed in the arm64 chroot"
phase_end

phase_start "arm64: checks"
AC() { in_chroot /work/venv/bin/python /work/arm64_compare.py "$@"; }
arm_wheels() { AC wheels /work/venv | label "arm64|"; }
arm_info() { in_chroot edgeseg info /work/model_int8.tflite | label "arm64|"; }
arm_eval() {
    in_chroot edgeseg eval /work/model_int8.tflite --data /work/data/val --threads 1 \
        --out /work/eval_arm64.json | label "arm64| $EMU"
}
arm_run() {
    in_chroot edgeseg run /work/model_int8.tflite --source /work/video.avi --headless \
        --threads 1 --save-masks /work/masks_arm64 | label "arm64| $EMU"
}
arm_bench() {
    in_chroot edgeseg bench /work/model_int8.tflite --threads 1 --runs 10 --warmup 2 \
        --json /work/bench_arm64.json | label "arm64| $EMU"
}
arm_classes() { AC classes /work/model_int8.tflite /work/inputs.npy /work/classes_arm64.npy; }
check "only aarch64 / pure-Python wheels, no TensorFlow" arm_wheels
check "edgeseg info" arm_info
echo "  (timings below come from qemu emulating $QEMU_CPU_MODEL on x86: $EMU)"
check "edgeseg eval" arm_eval
check "eval mIoU arm64 == x86 within 0.005" HC eval "$WORK/eval_x86.json" "$WORK/eval_arm64.json" --tol 0.005
check "edgeseg run (video, headless, --save-masks)" arm_run
check "run masks saved, one per frame" HC masks "$WORK/masks_x86" "$WORK/masks_arm64"
check "edgeseg bench" arm_bench
check "class maps of the saved input tensors" arm_classes
check "class agreement >= 99.9% on identical input tensors" \
    HC agree "$WORK/classes_x86.npy" "$WORK/classes_arm64.npy" --min 0.999
phase_end

printf '\n==> arm64 (Debian 12 %s, Python 3.11, qemu %s, %s) results\n' "$SUITE" "$QEMU_CPU_MODEL" "$PI_NAME"
printf '  %s\n' "${RESULTS[@]}"
printf '\n==> wall time per phase (this x86 machine; arm64 steps are %s)\n' "$EMU"
printf '  %s\n' "${TIMES[@]}"
printf '  %-44s %4ds\n' "total" $((SECONDS - T_START))
if [[ $FAILED -ne 0 ]]; then
    printf '\narm64 check FAILED\n'
    exit 1
fi
printf '\narm64 check PASSED: the wheel installs and runs on arm64 Debian 12 and matches x86\n'
