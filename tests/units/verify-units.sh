#!/bin/sh
# Installs the build into a scratch root and runs `systemd-analyze verify`
# on every Ferry unit there (verify wants the ExecStart binaries to exist,
# which the install provides). Prints one line per unit and the summary.
set -u
build=$1
root=$(mktemp -d /tmp/ferry-units-XXXXXX)
trap 'rm -rf "$root"' EXIT
# systemd's own units (targets, dbus.socket) come from the host's systemd package.
mkdir -p "$root/usr/lib/systemd/system" "$root/etc/systemd/system"
cp -a /lib/systemd/system/. "$root/usr/lib/systemd/system/"
DESTDIR=$root cmake --install "$build" --prefix /usr >/dev/null || { echo "install failed"; exit 1; }
# Binaries some units name that come from other packages.
for b in /usr/sbin/nologin /usr/sbin/sshd /usr/bin/busctl /usr/bin/systemctl; do
  mkdir -p "$root$(dirname $b)"; [ -e "$root$b" ] || cp "$b" "$root$b" 2>/dev/null || true
done
# Units refer to binaries under /usr; systemd-analyze resolves them in --root.
pass=0; fail=0
for u in "$root"/usr/lib/systemd/system/ferry-*; do
  name=$(basename "$u")
  out=$(systemd-analyze verify --root="$root" --man=no "/usr/lib/systemd/system/$name" 2>&1 \
        )
  if [ -n "$out" ]; then
    echo "FAIL $name"; echo "$out" | sed 's/^/    /'; fail=$((fail+1))
  else
    echo "ok   $name"; pass=$((pass+1))
  fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
