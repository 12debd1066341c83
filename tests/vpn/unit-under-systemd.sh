#!/bin/bash
# Manual check (not run by ctest: it boots systemd, ~10 s): runs
# units/ferry-vpn-forwarderd.service under real systemd as PID 1 in
# systemd-nspawn, with its whole sandbox (user ferry, CAP_NET_ADMIN only,
# seccomp, ProtectKernelTunables, ProcSubset=pid, …), and checks that the
# daemon starts, follows tap0, switches forwarding on, saves the toggles,
# honours the bus policy and removes its table on stop.
#
# The container is the host's own /usr (read-only) with a copy of /etc, in a
# private network namespace: nothing outside it is touched. Needs root,
# systemd-nspawn, a 'ferry' user in /etc/passwd, and a build dir holding
# ferry-vpn-forwarderd and ferryctl (default: build-vpn, or $1).
# Usage: tests/vpn/unit-under-systemd.sh [BUILD_DIR]
set -euo pipefail

SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$SRC/build-vpn}
W=$(mktemp -d /var/tmp/ferry-vpn-unit.XXXXXX)
R=$W/root
CG=ferry-vpn-unit-$$
NSP="" LEADER=""
PASS=0 FAIL=0
ok()  { PASS=$((PASS + 1)); echo "PASS: $*"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL: $*"; }
check() { local d=$1; shift; if "$@"; then ok "$d"; else bad "$d"; fi; }

cleanup() {
    set +e
    if [ -n "$NSP" ] && kill -0 "$NSP" 2>/dev/null; then
        kill -TERM "$NSP"
        for _ in $(seq 100); do kill -0 "$NSP" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$NSP" 2>/dev/null && kill -KILL "$NSP"
    fi
    for c in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified; do
        [ -d "$c/$CG" ] && find "$c/$CG" -depth -type d -exec rmdir {} \; 2>/dev/null
    done
    rm -rf "$W"
}
trap cleanup EXIT

# A root directory: the host's /usr bound read-only, a private copy of /etc.
mkdir -p "$R"/{dev,proc,sys,run,tmp,var,usr/lib,opt/ferry,root} "$W/stage"
cp -a /etc "$R/etc"
cp /usr/lib/os-release "$R/usr/lib/"
for l in bin lib lib64 sbin; do ln -s "usr/$l" "$R/$l"; done
rm -f "$R/etc/machine-id"
# Only what this check needs starts at boot.
find "$R/etc/systemd/system" -path '*.wants/*' -delete
# systemd-networkd would still start (socket-activated) and manage the link
# named ve-* below (80-container-ve.network masquerades, which switches
# forwarding on everywhere): the daemon's own switching would go unseen.
for u in systemd-networkd.service systemd-networkd.socket; do ln -sf /dev/null "$R/etc/systemd/system/$u"; done
cp "$BUILD/services/vpn-forwarderd/ferry-vpn-forwarderd" "$BUILD/services/ferryctl/ferryctl" "$W/stage/"
cp "$SRC/units/ferry-vpn-forwarderd.service" "$R/etc/systemd/system/"
mkdir -p "$R/etc/systemd/system/ferry-vpn-forwarderd.service.d"
# The unit as shipped; only the binary's path differs (/usr is read-only here).
printf '[Service]\nExecStart=\nExecStart=/opt/ferry/ferry-vpn-forwarderd\n' \
    >"$R/etc/systemd/system/ferry-vpn-forwarderd.service.d/path.conf"
cp "$SRC/dbus/org.ferry.VpnForwarder1.conf" "$R/etc/dbus-1/system.d/"
# Documentation addresses only (RFC 5737): the container at 192.0.2.2
# instead of the appliance's default, the VPN link in 198.51.100.0/25.
mkdir -p "$R/etc/ferry"
printf 'container-address: 192.0.2.2\n' >"$R/etc/ferry/vpn-forwarder.yml"

setsid sh -c '
  for c in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified; do mkdir -p $c/'"$CG"'; echo $$ > $c/'"$CG"'/cgroup.procs; done
  echo $$ > '"$W"'/nspawn.pid; exec "$@"' nspawn \
    systemd-nspawn --quiet -D "$R" -M ferryvpn --boot --register=no --keep-unit --private-network \
    --bind-ro=/usr:/usr --bind-ro="$W/stage":/opt/ferry </dev/null >"$W/console.log" 2>&1 &
for _ in $(seq 200); do
    NSP=$(cat "$W/nspawn.pid" 2>/dev/null || true)
    [ -n "$NSP" ] && LEADER=$(pgrep -P "$NSP" -x systemd || true)
    [ -n "$LEADER" ] && break
    sleep 0.05
done
[ -n "$LEADER" ] || { echo "container PID 1 never appeared"; cat "$W/console.log"; exit 1; }
ct() { nsenter -t "$LEADER" -a -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin SYSTEMD_PAGER= SYSTEMD_COLORS=0 "$@"; }
for _ in $(seq 300); do
    case $(ct systemctl is-system-running 2>/dev/null || true) in running | degraded) break ;; esac
    sleep 0.1
done
waitfor() { for _ in $(seq 50); do "$@" && return 0; sleep 0.1; done; return 1; }
status() { ct systemctl show -p StatusText --value ferry-vpn-forwarderd; }
prop() { ct busctl get-property org.ferry.VpnForwarder1 /org/ferry/VpnForwarder1 org.ferry.VpnForwarder1 "$1"; }
# `check "…" sh_ 'pipeline'` runs a pipeline with these helpers available.
export LEADER
export -f ct status prop
sh_() { bash -c "$1"; }

ct systemctl start ferry-vpn-forwarderd
check "unit is active under its sandbox" ct systemctl -q is-active ferry-vpn-forwarderd
PID=$(ct systemctl show -p MainPID --value ferry-vpn-forwarderd)
check "runs as user ferry" ct grep -q "^Uid:.*$(id -u ferry)" /proc/"$PID"/status
check "holds CAP_NET_ADMIN only" ct grep -q "^CapEff:.*0000000000001000" /proc/"$PID"/status
check "runs under a seccomp filter" ct grep -q "^Seccomp:.*2" /proc/"$PID"/status
check "STATUS= waits for tap0" waitfor sh_ "status | grep -q 'Waiting for tap0'"

# Start with forwarding off everywhere, so that the daemon must switch it on
# itself (over rtnetlink, with /proc/sys read-only for it). /proc/sys is
# read-only inside the container too (nspawn), so this is written from the
# host's mount namespace, in the container's network namespace.
nsenter -t "$LEADER" -n sysctl -w net.ipv4.conf.all.forwarding=0 net.ipv4.conf.default.forwarding=0 >/dev/null
ct ip link add ve-container type veth peer name ctr0
ct ip addr add 192.0.2.1/24 dev ve-container
ct ip link set ve-container up
ct ip link set ctr0 up
ct ip link add tap0 type veth peer name vpn0
ct ip link set vpn0 up
ct ip addr add 198.51.100.2/25 dev tap0
ct ip link set tap0 up
check "forwards once tap0 is up" waitfor sh_ "prop Forwarding | grep -q true"
check "STATUS= says so" sh_ "status | grep -q 'Forwarding TCP 22, 2000-2009 from 198.51.100.2'"
check "DNAT rule installed" sh_ "ct nft list table inet ferry_forwarder | grep -q 'dnat ip to 192.0.2.2'"
check "forwarding switched on for tap0 (over rtnetlink)" \
    sh_ "ct sysctl -n net.ipv4.conf.tap0.forwarding | grep -q 1"
check "forwarding switched on for ve-container" \
    sh_ "ct sysctl -n net.ipv4.conf.ve-container.forwarding | grep -q 1"
check "by the daemon" waitfor sh_ "ct journalctl -u ferry-vpn-forwarderd -q | grep -q 'Enabled IPv4 forwarding on tap0'"
check "root may turn LAN access on" ct /opt/ferry/ferryctl vpn lan on
check "toggle saved in StateDirectory" ct grep -q "lan-access=on" /var/lib/ferry/vpn-forwarder.state
check "another user may read the status" ct setpriv --reuid=65534 --regid=65534 --clear-groups /opt/ferry/ferryctl vpn status
check "another user may not change a toggle" \
    sh_ "! ct setpriv --reuid=65534 --regid=65534 --clear-groups /opt/ferry/ferryctl vpn lan off"
ct systemctl stop ferry-vpn-forwarderd
check "stop removes Ferry's forwards (the guards stay)" \
    sh_ "ct nft list table inet ferry_forwarder | grep -q guard && ! ct nft list table inet ferry_forwarder | grep -q 'dnat ip to'"
ct systemctl start ferry-vpn-forwarderd
check "restart re-applies the saved toggle" \
    waitfor sh_ "ct nft list table inet ferry_forwarder 2>/dev/null | grep -q 'lan access'"
check "no warnings or errors in the journal" \
    sh_ "! ct journalctl -u ferry-vpn-forwarderd -p warning --no-pager -q | grep ."
ct journalctl -u ferry-vpn-forwarderd --no-pager -q | tail -12
echo "passed $PASS, failed $FAIL"
[ "$FAIL" -eq 0 ]
