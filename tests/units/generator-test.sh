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
# No machine id: the unit's own 30 s start delay.
FERRY_MACHINE_ID_FILE=/nonexistent FERRY_CONFIG_DIR="$root/etc" "$build/services/push-generator/ferry-push-generator" "$root/gen" || { echo "generator failed"; echo "0 passed, 1 failed"; exit 1; }
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
# Four machine ids: each gets a phase inside one period that is stable from
# run to run, and they are not all the same (no values assumed).
phases=""
for id in 0123456789abcdef0123456789abcdef fedcba9876543210fedcba9876543210 00000000000000000000000000000001 a1b2c3d4e5f60718293a4b5c6d7e8f90; do
  printf '%s\n' "$id" > "$root/machine-id"
  rm -rf "$root/gen2"; mkdir -p "$root/gen2"
  FERRY_MACHINE_ID_FILE="$root/machine-id" FERRY_CONFIG_DIR="$root/etc" "$build/services/push-generator/ferry-push-generator" "$root/gen2"
  first=$(sed -n 's/^OnActiveSec=\([0-9]*\)s$/\1/p' "$root/gen2/ferry-push.timer.d/50-period.conf")
  rm -rf "$root/gen3"; mkdir -p "$root/gen3"
  FERRY_MACHINE_ID_FILE="$root/machine-id" FERRY_CONFIG_DIR="$root/etc" "$build/services/push-generator/ferry-push-generator" "$root/gen3"
  again=$(sed -n 's/^OnActiveSec=\([0-9]*\)s$/\1/p' "$root/gen3/ferry-push.timer.d/50-period.conf")
  if [ -n "$first" ] && [ "$first" -ge 30 ] && [ "$first" -lt 90 ] && [ "$first" = "$again" ]; then phases="$phases $first"; else phases="$phases bad($first/$again)"; fi
done
distinct=$(printf '%s\n' $phases | sort -u | wc -l)
if printf '%s' "$phases" | grep -q bad; then fail=$((fail+1)); echo "FAIL push phase out of [30, 90) s or unstable:$phases"
elif [ "$distinct" -lt 2 ]; then fail=$((fail+1)); echo "FAIL every machine got the same push phase:$phases"
else pass=$((pass+1)); echo "ok   push phase per machine in [30, 90) s, stable, spread:$phases"; fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
