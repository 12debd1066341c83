# Several containers with real systemd on one private network, for
# tests/system/multihost (sourced after lib.sh). The method and its traps are
# in shared/recipes/NSPAWN-MULTIHOST.md; in short:
#  - one pristine tree, derived once from the suite's cached rootfs, made
#    bootable N times at once (no hostname, empty machine-id, no sshd host
#    keys but a per-boot keygen unit, empty resolv.conf), booted with
#    --volatile=overlay so that every write vanishes with the container;
#  - a bridge in a network namespace of its own, one namespace per container
#    with a veth to it, addresses from 192.0.2.0/24 and 2001:db8::/64 only,
#    set before the container boots; the host's network is never touched;
#  - --register=no --keep-unit, each nspawn started from a cgroup made here;
#    --capability=CAP_NET_ADMIN (nft/iptables inside); --resolv-conf=off;
#  - teardown by the pids and paths recorded in $MH_RUN/state.

MH_ROOTFS_VERSION=1   # bump when mh_customize_rootfs changes

# mh_prepare_rootfs: sets MH_ROOTFS to a tree derived from $ROOTFS (lib.sh's
# ensure_rootfs) and made bootable several times at once. Cached beside it.
mh_prepare_rootfs() {
    local key
    key=$(printf '%s %s' "$(basename "$ROOTFS")" "$MH_ROOTFS_VERSION" | sha256sum | cut -c1-12)
    MH_ROOTFS=$FERRY_TEST_CACHE/rootfs-multihost-$key
    exec 8>"$FERRY_TEST_CACHE/multihost-rootfs.lock"
    flock 8
    if [ ! -f "$MH_ROOTFS/.ferry-multihost-ok" ]; then
        rm -rf "$MH_ROOTFS.tmp"
        cp -a "$ROOTFS" "$MH_ROOTFS.tmp"
        mh_customize_rootfs "$MH_ROOTFS.tmp"
        touch "$MH_ROOTFS.tmp/.ferry-multihost-ok"
        rm -rf "$MH_ROOTFS"
        mv "$MH_ROOTFS.tmp" "$MH_ROOTFS"
    fi
    flock -u 8
    exec 8>&-
}

mh_customize_rootfs() {
    local r=$1
    # Else systemd names every container after the file, over --hostname=.
    rm -f "$r/etc/hostname"
    # One machine-id per container: empty file (nspawn's --uuid= fills it),
    # dbus's copy pointing at it (systemd would prefer the old copy).
    rm -f "$r/etc/machine-id" "$r/var/lib/dbus/machine-id"
    : >"$r/etc/machine-id"
    chmod 0444 "$r/etc/machine-id"
    mkdir -p "$r/var/lib/dbus"
    ln -s /etc/machine-id "$r/var/lib/dbus/machine-id"
    # One sshd host key per container and boot (the tree's keys would be
    # shared by all): ed25519 only, made before ssh.service.
    rm -f "$r"/etc/ssh/ssh_host_*
    cat >"$r/etc/systemd/system/ferry-test-hostkey.service" <<'EOF'
[Unit]
Description=Generate this container's SSH host key (the shared tree ships none)
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key
Before=ssh.service

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -q -t ed25519 -N "" -f /etc/ssh/ssh_host_ed25519_key
EOF
    mkdir -p "$r/etc/systemd/system/ssh.service.wants"
    ln -sf ../ferry-test-hostkey.service "$r/etc/systemd/system/ssh.service.wants/ferry-test-hostkey.service"
    # No nameserver: lookups of unknown names fail at once, none leaves.
    rm -f "$r/etc/resolv.conf"
    : >"$r/etc/resolv.conf"
}

# ---------------------------------------------------------------- the run
# mh_start RUNDIR NAME:IPSUFFIX...: network + boot, all containers at once.
# Afterwards MH_LEADER[NAME] is each container's PID 1 as the host sees it.
declare -A MH_LEADER MH_NSPAWN MH_IP4 MH_IP6 MH_MACHINE
MH_RUN="" MH_NAMES=()

mh_cgroup_roots() { cgroup_roots; }

mh_start() {
    MH_RUN=$1
    shift
    local spec name n roots deadline pending s
    mkdir -p "$MH_RUN/ns"
    : >"$MH_RUN/state"
    roots=$(mh_cgroup_roots | tr '\n' ' ')
    for c in $roots; do echo "cgroot $c" >>"$MH_RUN/state"; done
    mh_mkns "$MH_RUN/ns/br"
    nsenter --net="$MH_RUN/ns/br" sh -c 'ip link set lo up && ip link add br0 type bridge mcast_snooping 0 && ip link set br0 up'
    {
        printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n'
    } >"$MH_RUN/hosts"
    n=0
    for spec in "$@"; do
        name=${spec%%:*}
        MH_NAMES+=("$name")
        MH_IP4[$name]=192.0.2.${spec#*:}
        MH_IP6[$name]=2001:db8::${spec#*:}
        MH_MACHINE[$name]=ferry-mh-$$-$name
        printf '%s\t%s\n%s\t%s\n' "${MH_IP4[$name]}" "$name" "${MH_IP6[$name]}" "$name" >>"$MH_RUN/hosts"
    done
    for name in "${MH_NAMES[@]}"; do
        mh_mkns "$MH_RUN/ns/$name"
        ip link add "v$n" netns "$MH_RUN/ns/br" type veth peer name eth0 netns "$MH_RUN/ns/$name"
        nsenter --net="$MH_RUN/ns/br" ip link set "v$n" master br0 up
        # nodad: the addresses are unique by construction; DAD would keep
        # IPv6 unusable for ~2 s.
        nsenter --net="$MH_RUN/ns/$name" sh -c "ip link set lo up && ip addr add ${MH_IP4[$name]}/24 dev eth0 &&
            ip addr add ${MH_IP6[$name]}/64 dev eth0 nodad && ip link set eth0 up"
        n=$((n + 1))
    done
    for name in "${MH_NAMES[@]}"; do mh_boot_one "$name" "$roots"; done
    deadline=$((SECONDS + 30))
    for name in "${MH_NAMES[@]}"; do
        while [ -z "${MH_LEADER[$name]:-}" ]; do
            [ $SECONDS -lt $deadline ] || { cat "$MH_RUN/$name/console.log"; die "PID 1 of $name never appeared"; }
            MH_NSPAWN[$name]=$(cat "$MH_RUN/$name/nspawn.pid" 2>/dev/null || true)
            [ -z "${MH_NSPAWN[$name]}" ] || MH_LEADER[$name]=$(pgrep -P "${MH_NSPAWN[$name]}" -x systemd || true)
            [ -n "${MH_LEADER[$name]:-}" ] || sleep 0.05
        done
    done
    declare -gA MH_BOOT_STATE=()
    pending=${#MH_NAMES[@]}
    deadline=$((SECONDS + 120))
    while [ "$pending" -gt 0 ] && [ $SECONDS -lt $deadline ]; do
        for name in "${MH_NAMES[@]}"; do
            [ -z "${MH_BOOT_STATE[$name]:-}" ] || continue
            s=$(mct "$name" systemctl is-system-running 2>/dev/null || true)
            case $s in running|degraded) MH_BOOT_STATE[$name]=$s; pending=$((pending - 1)) ;; esac
        done
        [ "$pending" = 0 ] || sleep 0.1
    done
}

mh_mkns() { touch "$1"; echo "netns $1" >>"$MH_RUN/state"; unshare --net="$1" true; }

mh_boot_one() {
    local name=$1 roots=$2 d=$MH_RUN/$1
    mkdir -p "$d"
    echo "ct $name ${MH_MACHINE[$name]}" >>"$MH_RUN/state"
    rm -f "$d/nspawn.pid"
    setsid sh -c 'for c in $1; do mkdir -p "$c/$2" && echo $$ >"$c/$2/cgroup.procs"; done
                  echo $$ >"$3"; shift 3; exec "$@"' boot "$roots" "${MH_MACHINE[$name]}" "$d/nspawn.pid" \
        systemd-nspawn --quiet --directory="$MH_ROOTFS" --machine="${MH_MACHINE[$name]}" --hostname="$name" \
            --uuid="$(tr -d - </proc/sys/kernel/random/uuid)" --boot --register=no --keep-unit --volatile=overlay \
            --network-namespace-path="$MH_RUN/ns/$name" --capability=CAP_NET_ADMIN \
            --resolv-conf=off --link-journal=no --bind-ro="$MH_RUN/hosts":/etc/hosts \
            --bind-ro="$DEBS":/debs \
        </dev/null >"$d/console.log" 2>&1 &
    disown
}

# mct NAME CMD...: runs CMD in container NAME (all its namespaces, clean env).
mct() {
    local name=$1
    shift
    nsenter -t "${MH_LEADER[$name]}" -a -- env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/root TERM=dumb LANG=C.UTF-8 SYSTEMD_PAGER= SYSTEMD_COLORS=0 "$@"
}
mcts() { local name=$1; shift; mct "$name" sh -c "$1"; }

# mh_save_journal NAME: the journal lives in the container's tmpfs.
mh_save_journal() {
    [ -n "${MH_LEADER[$1]:-}" ] && kill -0 "${MH_LEADER[$1]}" 2>/dev/null || return 0
    mct "$1" journalctl --no-pager -o short-precise >"$MH_RUN/$1/journal.txt" 2>&1 || true
}

# mh_stop NAME: a clean poweroff of one container (SIGTERM to its nspawn).
mh_stop() {
    local name=$1 pid=${MH_NSPAWN[$1]:-} i
    mh_save_journal "$name"
    [ -n "$pid" ] && mh_is_ours "$pid" "${MH_MACHINE[$name]}" || return 0
    kill -TERM "$pid"
    for i in $(seq 150); do
        mh_is_ours "$pid" "${MH_MACHINE[$name]}" || break
        if [ "$i" = 20 ] || [ "$i" = 50 ]; then
            local p; p=$(pgrep -P "$pid" -x systemd || true)
            [ -z "$p" ] || kill -s RTMIN+3 "$p"
        fi
        sleep 0.1
    done
    mh_is_ours "$pid" "${MH_MACHINE[$name]}" && kill -KILL "$pid"
    MH_LEADER[$name]=""
}

mh_is_ours() { { tr '\0' ' ' <"/proc/$1/cmdline"; } 2>/dev/null | grep -q -- "--machine=$2 "; }

# mh_teardown RUNDIR: every container down, cgroups and namespaces removed,
# from what $RUNDIR/state recorded (works after a crash too).
mh_teardown() {
    local run=$1 kind a b c p pid
    [ -f "$run/state" ] || return 0
    set +e
    local -a roots=() names=() machines=() nsfiles=()
    while read -r kind a b; do
        case $kind in
            cgroot) roots+=("$a") ;;
            ct) names+=("$a"); machines+=("$b") ;;
            netns) nsfiles+=("$a") ;;
        esac
    done <"$run/state"
    for i in "${!names[@]}"; do mh_save_journal "${names[$i]}"; done
    for i in "${!names[@]}"; do
        pid=$(cat "$run/${names[$i]}/nspawn.pid" 2>/dev/null)
        [ -n "$pid" ] && mh_is_ours "$pid" "${machines[$i]}" && kill -TERM "$pid"
    done
    for n in $(seq 150); do
        local alive=0
        for i in "${!names[@]}"; do
            pid=$(cat "$run/${names[$i]}/nspawn.pid" 2>/dev/null)
            if [ -n "$pid" ] && mh_is_ours "$pid" "${machines[$i]}"; then
                alive=1
                if [ "$n" = 20 ] || [ "$n" = 50 ]; then
                    p=$(pgrep -P "$pid" -x systemd)
                    [ -z "$p" ] || kill -s RTMIN+3 "$p"
                fi
            fi
        done
        [ $alive = 0 ] && break
        sleep 0.1
    done
    for i in "${!names[@]}"; do
        pid=$(cat "$run/${names[$i]}/nspawn.pid" 2>/dev/null)
        [ -n "$pid" ] && mh_is_ours "$pid" "${machines[$i]}" && kill -KILL "$pid"
    done
    for c in "${machines[@]}"; do
        for a in "${roots[@]}"; do
            [ -d "$a/$c" ] || continue
            for _ in $(seq 50); do
                p=$(find "$a/$c" -name cgroup.procs -exec cat {} + 2>/dev/null)
                [ -z "$p" ] && break
                kill -KILL $p 2>/dev/null
                sleep 0.1
            done
            find "$a/$c" -depth -type d -exec rmdir {} \; 2>/dev/null
        done
        rmdir "/run/systemd/nspawn/propagate/$c" 2>/dev/null
    done
    for a in "${nsfiles[@]}"; do umount "$a" 2>/dev/null; rm -f "$a"; done
    rmdir "$run/ns" 2>/dev/null
    rm -f "$run/state"
    set -e
    return 0
}
