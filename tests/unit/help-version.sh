#!/bin/sh
# Every daemon and tool answers --help (usage, exit 0) and --version
# ("<name> <project version>", exit 0) before touching config, bus or state.
#   help-version.sh BUILD_DIR VERSION
set -u
build=$1 version=$2
empty=$(mktemp -d)
trap 'rm -rf "$empty"' EXIT
fail=0
for bin in pushd/ferry-pushd pulld/ferry-pulld collectord/ferry-collectord registryd/ferry-registryd \
           keyregd/ferry-keyregd fwcheckd/ferry-fwcheckd vpn-forwarderd/ferry-vpn-forwarderd sampler/ferry-sampler \
           authorized-keys/ferry-authorized-keys tunnel-relay/ferry-tunnel-relay push-generator/ferry-push-generator \
           master-generator/ferry-master-generator ferryctl/ferryctl; do
  name=${bin#*/}
  out=$(FERRY_CONFIG_DIR=$empty FERRY_STATE_DIR=$empty DBUS_SYSTEM_BUS_ADDRESS=unix:path=$empty/none \
        "$build/services/$bin" --version 2>&1) && rc=0 || rc=$?
  if [ "$rc" != 0 ] || [ "$out" != "$name $version" ]; then
    echo "FAIL: $name --version: exit $rc, printed '$out' (expected '$name $version')"; fail=1
  fi
  out=$(FERRY_CONFIG_DIR=$empty FERRY_STATE_DIR=$empty DBUS_SYSTEM_BUS_ADDRESS=unix:path=$empty/none \
        "$build/services/$bin" --help 2>&1) && rc=0 || rc=$?
  case "$out" in
  *"Usage: $name "*"--version"*) [ "$rc" = 0 ] || { echo "FAIL: $name --help exited $rc"; fail=1; } ;;
  *) echo "FAIL: $name --help printed no usage with --version: $out"; fail=1 ;;
  esac
  out=$(FERRY_CONFIG_DIR=$empty FERRY_STATE_DIR=$empty DBUS_SYSTEM_BUS_ADDRESS=unix:path=$empty/none \
        "$build/services/$bin" --no-such-option 2>&1) && rc=0 || rc=$?
  case "$out" in
  *"--no-such-option"*) [ "$rc" != 0 ] || { echo "FAIL: $name accepted --no-such-option"; fail=1; } ;;
  *) echo "FAIL: $name did not name --no-such-option: $out"; fail=1 ;;
  esac
  [ $fail = 0 ] && echo "ok: $name"
done
exit $fail
