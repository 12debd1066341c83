#!/bin/sh
# ferry-push-generator against systemd's own parser: the drop-in it writes
# for `sender: period: 60` must leave ferry-push.timer with both monotonic
# triggers (OnActiveSec from the unit, OnUnitActiveSec from plugins.yml).
set -u
build=$1 src=$2
root=$(mktemp -d /tmp/ferry-gen-XXXXXX)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/etc" "$root/gen" "$root/units"
printf 'sender:\n  period: 60\n' > "$root/etc/plugins.yml"
FERRY_CONFIG_DIR="$root/etc" "$build/services/push-generator/ferry-push-generator" "$root/gen" || { echo "generator failed"; echo "0 passed, 1 failed"; exit 1; }
cp "$src/units/ferry-push.timer" "$src/units/ferry-push.service" "$root/units/"
cp -r "$root/gen/ferry-push.timer.d" "$root/units/"
# Merge unit + drop-in as systemd would, and read the effective triggers.
merged=$(cat "$root/units/ferry-push.timer" "$root/units/ferry-push.timer.d/50-period.conf")
# After the last empty OnUnitActiveSec= (which clears all monotonic
# triggers), what remains must include OnActiveSec and the new period.
after=$(printf '%s\n' "$merged" | awk '/^OnUnitActiveSec=$/{buf=""; next} {buf=buf $0 "\n"} END{printf "%s", buf}')
pass=0 fail=0
if printf '%s' "$after" | grep -q '^OnActiveSec=30s$'; then pass=$((pass+1)); echo "ok   OnActiveSec survives the drop-in"; else fail=$((fail+1)); echo "FAIL OnActiveSec is cleared by the drop-in"; fi
if printf '%s' "$after" | grep -q '^OnUnitActiveSec=60s$'; then pass=$((pass+1)); echo "ok   period 60 s reaches OnUnitActiveSec"; else fail=$((fail+1)); echo "FAIL the period is not in the drop-in"; fi
if systemd-analyze verify --man=no "$root/units/ferry-push.timer" 2>&1 | grep -q "Unknown\|Invalid"; then fail=$((fail+1)); echo "FAIL systemd-analyze verify complains"; else pass=$((pass+1)); echo "ok   systemd-analyze verify accepts the timer with its drop-in"; fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
