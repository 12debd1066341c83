# Shared by tests/system/run and bench/footprint/run: build the packages
# once, keep a pristine Debian 12 rootfs, boot it under systemd-nspawn with
# real systemd as PID 1, and run commands inside it.
#
# Everything cached lives under $FERRY_TEST_CACHE (default
# /var/cache/ferry-test): the rootfs tarball (keyed by its package list) and
# the built .debs (keyed by the source they were built from).

FERRY_TEST_CACHE=${FERRY_TEST_CACHE:-/var/cache/ferry-test}
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SUITE=bookworm

# Runtime libraries of the Ferry binaries, sshd for the master's tunnel and
# node_exporter for the footprint comparison. Preinstalled so that the
# container needs no network: it runs with a private, loopback-only one.
ROOTFS_PACKAGES="systemd,systemd-sysv,dbus,libpam-systemd,procps,iproute2,\
openssh-server,openssh-client,sqlite3,\
libsdbus-c++1,libssh-4,libyaml-cpp0.7,libspdlog1.10,libfmt9,libsqlite3-0,libssl3,libsystemd0,\
nftables,libnftables1,iptables,prometheus-node-exporter,\
libpq5,libprotobuf32,libsnappy1v5,libmicrohttpd12,libcurl4"

log() { printf '\n### [%(%T)T] %s\n' -1 "$*"; }
die() { echo "error: $*" >&2; exit 1; }

# The one mirror apt is configured with; the rootfs comes from nowhere else.
apt_mirror() {
    local m
    m=$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list \
        | grep -oE 'https?://[^ ]+/debian/?$' | head -n1)
    [ -n "$m" ] || m=$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/* \
        | grep -oE 'https?://[^ ]+/debian/?( |$)' | head -n1 | tr -d ' ')
    [ -n "$m" ] || die "no Debian mirror in apt's sources"
    echo "$m"
}

ensure_host_tools() {
    local missing="" p
    for p in debootstrap systemd-container zstd iproute2 dpkg-dev debhelper fakeroot lintian util-linux; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
    done
    [ -z "$missing" ] && return 0
    echo "installing on the host:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq -o DPkg::Lock::Timeout=600
    # --no-install-recommends: systemd-container recommends libnss-mymachines,
    # which would edit the host's nsswitch.conf.
    # shellcheck disable=SC2086
    apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends $missing >/dev/null
}

# Sets ROOTFS to a pristine, unpacked rootfs (never modified: containers boot
# it with --volatile=overlay).
ensure_rootfs() {
    local key tarball
    key=$(printf '%s %s' "$SUITE" "$ROOTFS_PACKAGES" | sha256sum | cut -c1-12)
    tarball=$FERRY_TEST_CACHE/rootfs-$SUITE-$key.tar.zst
    ROOTFS=$FERRY_TEST_CACHE/rootfs-$SUITE-$key
    mkdir -p "$FERRY_TEST_CACHE"
    [ -f "$ROOTFS/.ferry-rootfs-ok" ] && return 0
    if [ ! -f "$tarball" ]; then
        local tmp=$FERRY_TEST_CACHE/debootstrap.$$
        rm -rf "$tmp"
        log "debootstrap $SUITE from $(apt_mirror) (once per machine)"
        debootstrap --variant=minbase --include="$ROOTFS_PACKAGES" "$SUITE" "$tmp" "$(apt_mirror)" \
            >"$FERRY_TEST_CACHE/debootstrap.log" 2>&1 \
            || { tail -n 30 "$FERRY_TEST_CACHE/debootstrap.log"; rm -rf "$tmp"; die "debootstrap failed"; }
        echo ferry-test >"$tmp/etc/hostname"
        rm -f "$tmp"/var/cache/apt/archives/*.deb
        rm -rf "$tmp"/var/lib/apt/lists/*
        # Quiet, deterministic boots: no housekeeping timers, and node_exporter
        # only when the footprint bench starts it by hand.
        for u in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer \
                 man-db.timer dpkg-db-backup.timer prometheus-node-exporter.service; do
            ln -sf /dev/null "$tmp/etc/systemd/system/$u"
        done
        tar -C "$tmp" --zstd -cpf "$tarball.part" --numeric-owner --xattrs --acls .
        mv "$tarball.part" "$tarball"
        rm -rf "$tmp"
    fi
    rm -rf "$ROOTFS"
    mkdir -p "$ROOTFS"
    tar -C "$ROOTFS" --zstd -xpf "$tarball" --numeric-owner --xattrs --acls
    touch "$ROOTFS/.ferry-rootfs-ok"
}

# ---------------------------------------------------------------- container
# A container boots the pristine rootfs with --volatile=overlay (all writes
# go to a tmpfs and vanish at poweroff), a private loopback-only network (its
# sshd and Ferry's ports never meet the host's), and the packages
# bind-mounted read-only at /debs.
#
# The host's PID 1 is not systemd, so nspawn runs with --register=no
# --keep-unit from a cgroup made here, in every hierarchy the host mounts.

CT_NSPAWN="" CT_LEADER="" CT_CGROUP="" CT_LOGDIR=""

cgroup_roots() {
    if [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then
        echo /sys/fs/cgroup
    else
        local h
        for h in systemd unified; do [ -d "/sys/fs/cgroup/$h" ] && echo "/sys/fs/cgroup/$h"; done
    fi
}

# boot_container DEBS_DIR LOGDIR: boots and waits until systemd says the
# system is up. Sets CT_LEADER (the container's PID 1 as the host sees it).
boot_container() {
    local debs=$1 pidfile roots state
    CT_LOGDIR=$2
    mkdir -p "$CT_LOGDIR"
    CT_CGROUP=ferry-system-$$
    roots=$(cgroup_roots | tr '\n' ' ')
    pidfile=$CT_LOGDIR/nspawn.pid
    rm -f "$pidfile"
    # The shell moves itself into the new cgroups, then execs nspawn, so
    # nspawn's payload/ and supervisor/ cgroups land below ours.
    setsid sh -c 'for c in $1; do mkdir -p "$c/$2" && echo $$ >"$c/$2/cgroup.procs"; done
                  echo $$ >"$3"; shift 3; exec "$@"' boot "$roots" "$CT_CGROUP" "$pidfile" \
        systemd-nspawn --quiet --directory="$ROOTFS" --machine="ferry-test-$$" --boot \
            --register=no --keep-unit --volatile=overlay --private-network \
            --bind-ro="$debs":/debs \
        </dev/null >"$CT_LOGDIR/console.log" 2>&1 &
    local deadline=$((SECONDS + 30))
    while [ -z "$CT_LEADER" ]; do
        [ $SECONDS -lt $deadline ] || { cat "$CT_LOGDIR/console.log"; die "the container's PID 1 never appeared"; }
        CT_NSPAWN=$(cat "$pidfile" 2>/dev/null || true)
        [ -n "$CT_NSPAWN" ] && CT_LEADER=$(pgrep -P "$CT_NSPAWN" -x systemd || true)
        [ -n "$CT_LEADER" ] || sleep 0.05
    done
    deadline=$((SECONDS + 60))
    while :; do
        state=$(ct systemctl is-system-running 2>/dev/null || true)
        case $state in running|degraded) break ;; esac
        [ $SECONDS -lt $deadline ] || { cat "$CT_LOGDIR/console.log"; die "the container did not finish booting ($state)"; }
        sleep 0.1
    done
    CT_BOOT_STATE=$state
}

# ct CMD...: runs CMD inside the container, in all of its namespaces, with a
# clean environment.
ct() {
    nsenter -t "$CT_LEADER" -a -- env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        TERM=dumb LANG=C.UTF-8 SYSTEMD_PAGER= SYSTEMD_COLORS=0 "$@"
}

# cts 'SHELL SCRIPT': the same, through sh -c.
cts() { ct sh -c "$1"; }

stop_container() {
    set +e
    if [ -n "$CT_NSPAWN" ] && kill -0 "$CT_NSPAWN" 2>/dev/null; then
        if [ -n "$CT_LOGDIR" ] && [ -n "$CT_LEADER" ]; then
            ct journalctl --no-pager -o short-precise >"$CT_LOGDIR/journal.txt" 2>&1
        fi
        kill -TERM "$CT_NSPAWN"   # nspawn turns it into a clean poweroff
        local i
        for i in $(seq 100); do kill -0 "$CT_NSPAWN" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$CT_NSPAWN" 2>/dev/null && kill -KILL "$CT_NSPAWN"
        for i in $(seq 50); do kill -0 "$CT_NSPAWN" 2>/dev/null || break; sleep 0.1; done
    fi
    local c
    if [ -n "$CT_CGROUP" ]; then
        for c in $(cgroup_roots); do
            [ -d "$c/$CT_CGROUP" ] && find "$c/$CT_CGROUP" -depth -type d -exec rmdir {} \; 2>/dev/null
        done
    fi
    CT_NSPAWN="" CT_LEADER=""
    set -e
}

# wait_until SECONDS CMD...: true as soon as CMD succeeds, false at the deadline.
wait_until() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.2
    done
}

# ---------------------------------------------------------------- Ferry setup
# install_ferry PACKAGES...: dpkg -i of the named binary packages (the
# rootfs already holds every dependency; the container has no network).
install_ferry() {
    local files="" p
    for p in "$@"; do files="$files /debs/${p}_*.deb"; done
    cts "dpkg -i $files"
}

# setup_push_pair NODE_NAME: one container is both master and node, set up
# as an operator would: the node lists the master, the master enrols the
# node with the node's secret, the node registers (keyregd sends its key to
# registryd on 50010 and pins the master's host key from the signed answer),
# and sshd finds the node's key through ferry-authorized-keys.
setup_push_pair() {
    local node=$1
    cts "cat >/etc/ferry/ferry.yml <<EOF
node:
  name: $node
  mode: push
masters:
  - host: 127.0.0.1
    ssh_port: 22
    registry_port: 50010
EOF"
    cts "ferryctl master add-node $node </var/lib/ferry/secret"
    cts 'ferryctl register'
}

# keyreg_state: the node's registration state as keyregd reports it.
keyreg_state() {
    ct busctl get-property org.ferry.KeyReg1 /org/ferry/KeyReg1 org.ferry.KeyReg1 State | cut -d' ' -f2- | tr -d '"'
}

# The node's Ferry processes (the master's collector, registry and sshd are
# not the node's).
NODE_PROCESS_RE='^(ferry-pushd|ferry-push-once|ferry-sampler|ferry-keyregd|ferry-fwcheckd|ferry-login|ferryctl)$'
