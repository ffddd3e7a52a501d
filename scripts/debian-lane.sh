#!/usr/bin/env bash
# The second test lane: vgg-torch built and tested against the other Debian
# release's libtorch, in a chroot. On Debian 12 (libtorch 1.13) that is Debian
# 13 (trixie: libtorch, python3-torch 2.6, torchvision 0.21); on Debian 13 it
# is Debian 12. So CI covers libtorch 1.13 and 2.x whichever the machine runs.
#
#   bash scripts/debian-lane.sh [vitest args...]
#
# 1. Makes the root with debootstrap from this machine's configured Debian
#    mirror, or reuses the one already there: /var/cache/vgg-torch/<suite>
#    ($VGG_TORCH_LANE_ROOT), suite $VGG_TORCH_LANE_SUITE (trixie, bookworm).
# 2. Carries over this machine's CA certificates, DNS and npm settings, so apt
#    and npm work inside as they do here.
# 3. Copies this working tree in (tracked and untracked, not ignored files),
#    runs scripts/setup.sh inside (the same packages as here, then `npm ci`,
#    which builds the addon against that release's libtorch), builds dist/, and
#    runs the tests: the arguments given, else $VGG_TORCH_LANE_TESTS (default: all).
#
# Needs root (debootstrap, chroot, mounts). Exit status: that of the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
host=$(. /etc/os-release 2>/dev/null; echo "${VERSION_CODENAME:-}")
if [ -n "${VGG_TORCH_LANE_SUITE:-}" ]; then SUITE=$VGG_TORCH_LANE_SUITE
elif [ "$host" = trixie ]; then SUITE=bookworm
else SUITE=trixie
fi
ROOT=${VGG_TORCH_LANE_ROOT:-/var/cache/vgg-torch/$SUITE}
READY="$ROOT/.vgg-torch-root-ready"

log() { echo "debian-lane ($SUITE): $*"; }
die() { echo "debian-lane ($SUITE): $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot and mounts)"

# The machine's Debian mirror: the first URI of the deb822 sources, else of sources.list.
mirror() {
  local uri=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    uri=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    uri=$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' /etc/apt/sources.list)
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

MOUNTS=()
unmount_all() {
  local i
  for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
    umount -R -l "${MOUNTS[$i]}" 2>/dev/null || true
  done
  MOUNTS=()
}
trap unmount_all EXIT
trap 'unmount_all; exit 130' INT TERM

mount_into_root() {
  local d
  for d in proc sys dev; do mkdir -p "$ROOT/$d"; done
  mount -t proc proc "$ROOT/proc" && MOUNTS+=("$ROOT/proc")
  mount --rbind /sys "$ROOT/sys" && mount --make-rslave "$ROOT/sys" && MOUNTS+=("$ROOT/sys")
  mount --rbind /dev "$ROOT/dev" && mount --make-rslave "$ROOT/dev" && MOUNTS+=("$ROOT/dev")
}

in_root() { chroot "$ROOT" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  LANG=C.UTF-8 TERM=dumb CI="${CI:-}" NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt "$@"; }

# ---- 1. the root -----------------------------------------------------------
if [ ! -f "$READY" ]; then
  MIRROR=$(mirror)
  if ! command -v debootstrap >/dev/null 2>&1; then
    log "installing debootstrap"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap
  fi
  # A half-made root (an earlier run stopped) is made again from scratch.
  if [ -e "$ROOT" ]; then
    grep -q " $ROOT/" /proc/mounts && die "$ROOT has something mounted inside; unmount it first"
    rm -rf "$ROOT"
  fi
  mkdir -p "$ROOT"
  log "debootstrap $SUITE from $MIRROR into $ROOT"
  KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
  KEYOPT=()
  [ -f "$KEYRING" ] && KEYOPT=(--keyring="$KEYRING")
  debootstrap --variant=minbase "${KEYOPT[@]}" "$SUITE" "$ROOT" "$MIRROR" > "$ROOT.debootstrap.log" 2>&1 ||
    { tail -20 "$ROOT.debootstrap.log" >&2; die "debootstrap failed (log: $ROOT.debootstrap.log)"; }
  cat > "$ROOT/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
EOF
  # Index files are read as they are; a mirror snapshot may be older than Valid-Until.
  echo 'Acquire::Check-Valid-Until "false";' > "$ROOT/etc/apt/apt.conf.d/99vgg-torch"
  touch "$READY"
fi

# ---- 2. this machine's settings --------------------------------------------
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
cp -L /etc/hosts "$ROOT/etc/hosts" 2>/dev/null || true
mount_into_root
if ! in_root dpkg-query -W -f='${Status}' ca-certificates 2>/dev/null | grep -q "install ok installed"; then
  in_root apt-get update -q
  in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends ca-certificates git
fi
mkdir -p "$ROOT/usr/local/share/ca-certificates"
if compgen -G "/usr/local/share/ca-certificates/*" >/dev/null; then
  cp -a /usr/local/share/ca-certificates/. "$ROOT/usr/local/share/ca-certificates/"
fi
in_root update-ca-certificates >/dev/null
# npm's settings (registry, certificates, ...), then the lane's own: build
# against the root's Node headers, with its certificate bundle.
: > "$ROOT/root/.npmrc"
for f in "$HOME/.npmrc" /usr/etc/npmrc /etc/npmrc; do
  [ -f "$f" ] && grep -v -E '^\s*(nodedir|cafile|prefix)\s*=' "$f" >> "$ROOT/root/.npmrc" || true
done
printf 'nodedir=/usr\ncafile=/etc/ssl/certs/ca-certificates.crt\n' >> "$ROOT/root/.npmrc"

# ---- 3. the project --------------------------------------------------------
WORK="$ROOT/work/vgg-torch"
mkdir -p "$WORK"
# Replace the sources, keep node_modules/ and build/ (npm ci rebuilds them anyway).
find "$WORK" -mindepth 1 -maxdepth 1 ! -name node_modules ! -name build -exec rm -rf {} +
# (A tracked file deleted in the work tree is listed but absent: skipped.)
git -C "$REPO" ls-files -z --cached --others --exclude-standard |
  tar -C "$REPO" --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -C "$WORK" -xf -
if [ -d "$REPO/../shared" ]; then
  rm -rf "$ROOT/work/shared" && cp -a "$REPO/../shared" "$ROOT/work/shared"
fi

log "setup inside the root (scripts/setup.sh)"
in_root bash -c 'cd /work/vgg-torch && bash scripts/setup.sh'
in_root bash -c 'cd /work/vgg-torch && printf "debian-lane: %s, node %s, libtorch %s, python torch %s\n" \
  "$(. /etc/os-release; echo "$PRETTY_NAME")" "$(node --version)" \
  "$(dpkg-query -W -f="\${Version}" libtorch-dev 2>/dev/null || echo "?")" \
  "$(/usr/bin/python3 -W ignore -c "import torch; print(torch.__version__)")"'
in_root bash -c 'cd /work/vgg-torch && npm run --silent typecheck && npm run --silent build'

TESTS=("$@")
if [ ${#TESTS[@]} -eq 0 ] && [ -n "${VGG_TORCH_LANE_TESTS:-}" ]; then
  read -r -a TESTS <<< "$VGG_TORCH_LANE_TESTS"
fi
log "tests: ${TESTS[*]:-all}"
status=0
in_root bash -c 'cd /work/vgg-torch && exec npx vitest run "$@"' vitest "${TESTS[@]}" || status=$?
exit $status
