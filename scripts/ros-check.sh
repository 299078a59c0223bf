#!/usr/bin/env bash
# The node against a real ROS 2: run where a ROS 2 (Humble or Jazzy, with rclpy, ros2cli,
# launch_ros, std_srvs and vision_msgs) is sourced. CI has no ROS 2: without one this says so and
# exits 0 without checking anything.
#
#   scripts/ros-check.sh [--no-build] [--keep DIR]
#
# Builds the package with colcon in a scratch workspace (both feature spellings of the README:
# `--features ros,dds` as a comma list and `--features ros --features dds`, checking that both
# binaries are installed), then, inside a private network namespace with only loopback (no DDS
# traffic leaves the machine), runs the installed node and checks with the ROS tools:
#   1. topics: an rclpy peer (scripts/ros_peer.py) sends image pairs and an init; detections,
#      confidence_stamped, debug images and diagnostics come back with the sent stamps;
#   2. parameters: the preset override (-p over config/rgbe.yaml), a refused set (read-only) and an
#      out-of-range set come back as failures with the reason, an accepted one is in force;
#   3. services: ~/enable and ~/reset (std_srvs);
#   4. lifecycle: get, deactivate, activate through `ros2 lifecycle`;
#   5. RGB-D: the peer sends 16UC1 depth and a CameraInfo; ~/target_point, ~/detections_3d and
#      ~/markers come back at the scene's depths;
#   6. two targets: with max_targets:=2 the peer draws two squares and sends inits with ids a and
#      b; detections carry both ids, and only b after "a" on ~/reset_target;
#   7. `ros2 launch patrack patrack.launch.py` for each modality with use_sim_time:=True.
# Prints PASS/FAIL per check; exits 1 if any check failed.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build=1
keep=""
while [ $# -gt 0 ]; do
  case "$1" in
    --no-build) build=0 ;;
    --keep) keep="$2"; shift ;;
    -h|--help) sed -n 2,20p "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

if [ -z "${ROS_DISTRO:-}" ] || ! command -v ros2 >/dev/null 2>&1 || ! python3 -c 'import rclpy' 2>/dev/null; then
  echo "SKIPPED: no sourced ROS 2 (ROS_DISTRO, ros2 and rclpy are needed): nothing was checked."
  echo "Source /opt/ros/\$ROS_DISTRO/setup.bash (or your ROS 2 install) and run again."
  exit 0
fi
for tool in colcon unshare ip; do
  command -v "$tool" >/dev/null 2>&1 || { echo "error: $tool not found" >&2; exit 2; }
done

ws="${keep:-$(mktemp -d /tmp/patrack-ros-check.XXXXXX)}"
mkdir -p "$ws/src"
ln -sfn "$root" "$ws/src/patrack"
failures=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

if [ "$build" = 1 ]; then
  for spelling in "--features ros,dds" "--features ros --features dds"; do
    echo "=== colcon build --cargo-args --release $spelling (ROS $ROS_DISTRO)"
    rm -rf "$ws/install/patrack"
    # shellcheck disable=SC2086
    if (cd "$ws" && colcon build --packages-select patrack --cargo-args --release $spelling >"$ws/colcon.log" 2>&1); then
      installed=$(cd "$ws/install/patrack" && find . -type f | sort)
      echo "$installed" | sed 's/^/    /'
      if [ -x "$ws/install/patrack/lib/patrack/patrack_node" ] && [ -x "$ws/install/patrack/lib/patrack/patrack" ]; then
        pass "colcon with '$spelling' installs patrack and patrack_node"
      else
        fail "colcon with '$spelling' did not install both binaries"
      fi
    else
      fail "colcon build with '$spelling' failed (see $ws/colcon.log)"; tail -20 "$ws/colcon.log"
    fi
  done
  runpath=$(readelf -d "$ws/install/patrack/lib/patrack/patrack_node" 2>/dev/null | sed -n 's/.*RUNPATH.*\[\(.*\)\]/\1/p')
  echo "    installed patrack_node RUNPATH: $runpath"
  if ldd "$ws/install/patrack/lib/patrack/patrack_node" | grep -q "libtorch_cpu.so => /"; then
    pass "the installed node finds libtorch ($(ldd "$ws/install/patrack/lib/patrack/patrack_node" | sed -n 's/.*libtorch_cpu.so => \([^ ]*\).*/\1/p'))"
  else
    fail "the installed node does not find libtorch"
  fi
fi
[ -f "$ws/install/setup.bash" ] || { echo "error: no colcon install in $ws (run without --no-build)" >&2; exit 2; }

# Everything below runs inside one private network namespace.
cat >"$ws/inside.sh" <<'INSIDE'
set -uo pipefail
ip link set lo up && ip link set lo multicast on && ip route add 224.0.0.0/4 dev lo
test "$(ip -o link show | wc -l)" = 1 || { echo "FAIL: more than loopback in the namespace"; exit 1; }
export CYCLONEDDS_URI='<CycloneDDS><Domain><General><Interfaces><NetworkInterface name="lo" multicast="true"/></Interfaces><AllowMulticast>true</AllowMulticast></General></Domain></CycloneDDS>'
export ROS_AUTOMATIC_DISCOVERY_RANGE=SUBNET
set +u; . "$WS/install/setup.bash"; set -u
failures=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
share="$WS/install/patrack/share/patrack"
node_args=(--ros-args --params-file "$share/config/patrack.yaml" --params-file "$share/config/rgbe.yaml"
  -p tracker.lost_threshold:=0.5 -p device:=cpu -p precision:=fp32 -p model_config:=tiny
  -p tracker.lost_frames:=0 -p publish_debug_image:=true)
# The installed binary itself, not `ros2 run`: `ros2 run` leaves SIGINT to the terminal's process
# group and does not forward a signal sent to it alone.
"$WS/install/patrack/lib/patrack/patrack_node" "${node_args[@]}" >"$WS/node.log" 2>&1 &
node_pid=$!
for _ in $(seq 60); do ros2 node list 2>/dev/null | grep -q '^/patrack$' && break; sleep 1; done
ros2 node list | grep -q '^/patrack$' && pass "ros2 node list shows /patrack" || fail "/patrack not in ros2 node list"

# 1. topics
report=$(python3 "$ROOT/scripts/ros_peer.py" --pairs 30 --rate-hz 10)
echo "    peer: $report"
python3 - "$report" <<'PY' && pass "topics: detections with the sent stamps, boxes after the init, confidence_stamped, debug images, diagnostics" || fail "topics: $report"
import json, sys
r = json.loads(sys.argv[1])
ok = r["detections"] >= r["sent"] // 2 and r["with_box"] >= 1 and r["stamps_match"] and r["confidence_stamped"] >= 1 \
    and r["debug_images"] >= 1 and r["diagnostics"] >= 1 and 2 not in r["diag_levels"]
sys.exit(0 if ok else 1)
PY

# 2. parameters
v=$(ros2 param get /patrack tracker.lost_threshold); echo "    $v"
echo "$v" | grep -q "0.5" && pass "-p tracker.lost_threshold:=0.5 wins over rgbe.yaml's 0.2" || fail "preset override: $v"
v=$(ros2 param get /patrack modality); echo "    $v"
echo "$v" | grep -q "event" && pass "the preset is in force (modality event)" || fail "preset: $v"
out=$(ros2 param set /patrack model_path /tmp/x.safetensors 2>&1); echo "    $out"
echo "$out" | grep -qi "read-only" && pass "read-only model_path refused with the reason" || fail "model_path set: $out"
out=$(ros2 param set /patrack tracker.lost_threshold 2.0 2>&1); echo "    $out"
echo "$out" | grep -q "within \[0, 1\]" && pass "out-of-range value refused with the range" || fail "range: $out"
out=$(ros2 param set /patrack nonexistent 1 2>&1); echo "    $out"
echo "$out" | grep -qiE "unknown parameter|failed" && pass "unknown parameter refused" || fail "unknown: $out"
out=$(ros2 param set /patrack tracker.lost_threshold 0.3 2>&1); echo "    $out"
v=$(ros2 param get /patrack tracker.lost_threshold)
echo "$out" | grep -qi "successful" && echo "$v" | grep -q "0.3" && pass "accepted change is in force" || fail "accepted: $out / $v"
out=$(ros2 param describe /patrack tracker.lost_threshold 2>&1); echo "$out" | sed 's/^/    /'
echo "$out" | grep -q "Min value: 0.0" && pass "describe shows the range" || fail "describe: $out"

# 3. services
out=$(ros2 service call /patrack/enable std_srvs/srv/SetBool "{data: false}" 2>&1); echo "    $(echo "$out" | tail -1)"
echo "$out" | grep -q "success=True" && pass "~/enable false" || fail "enable: $out"
v=$(ros2 param get /patrack enabled); echo "$v" | grep -q "False" && pass "enabled parameter follows the service" || fail "enabled: $v"
ros2 service call /patrack/enable std_srvs/srv/SetBool "{data: true}" >/dev/null 2>&1
out=$(ros2 service call /patrack/reset std_srvs/srv/Trigger 2>&1); echo "    $(echo "$out" | tail -1)"
echo "$out" | grep -q "success=True" && pass "~/reset" || fail "reset: $out"

# 4. lifecycle
out=$(ros2 lifecycle get /patrack 2>&1); echo "    $out"
echo "$out" | grep -q "active \[3\]" && pass "lifecycle get: active" || fail "lifecycle get: $out"
out=$(ros2 lifecycle set /patrack deactivate 2>&1); echo "    $out"
v=$(ros2 lifecycle get /patrack 2>&1)
echo "$out" | grep -qi "successful" && echo "$v" | grep -q "inactive" && pass "lifecycle deactivate" || fail "deactivate: $out / $v"
out=$(ros2 lifecycle set /patrack configure 2>&1); echo "    $out"
echo "$out" | grep -qiE "unknown|not available|failed" && pass "unavailable transition refused" || fail "configure while inactive: $out"
out=$(ros2 lifecycle set /patrack activate 2>&1); echo "    $out"
echo "$out" | grep -qi "successful" && pass "lifecycle activate" || fail "activate: $out"
kill -INT "$node_pid"; wait "$node_pid"; rc=$?
[ "$rc" = 0 ] && pass "SIGINT stops the node cleanly" || fail "node exit code $rc on SIGINT"
! grep -q "ERROR" "$WS/node.log" && pass "no ERROR in the node's log" || { fail "ERROR lines in the node log"; grep ERROR "$WS/node.log" | head -5; }

# 5. RGB-D: a CameraInfo and 16UC1 depth give the 3D outputs
# The bundled RGB-D demo model, which tracks the peer's square (the test weights would not).
"$WS/install/patrack/lib/patrack/patrack_node" --ros-args --params-file "$share/config/patrack.yaml" \
  --params-file "$share/config/rgbd.yaml" -p device:=cpu -p precision:=fp32 \
  -p model_path:="$ROOT/models/patrack_small_rgbd.safetensors" >"$WS/node-depth.log" 2>&1 &
depth_pid=$!
for _ in $(seq 60); do ros2 node list 2>/dev/null | grep -q '^/patrack$' && break; sleep 1; done
report=$(python3 "$ROOT/scripts/ros_peer.py" --depth --pairs 30 --rate-hz 10)
echo "    depth peer: $report"
python3 - "$report" <<'PY' && pass "RGB-D: ~/target_point at the tracked square's depth, ~/detections_3d, ~/markers" || fail "RGB-D: $report"
import json, sys
r = json.loads(sys.argv[1])
# The square is at 1.5 m before a wall at 3 m: every point's depth is one of the scene's, and the
# tracked square's (within 3 %) for most of the pairs.
ok = r["points"] >= r["sent"] // 2 and r["points_at_square"] >= r["sent"] // 2 and r["detections_3d"] >= 1 \
    and r["markers"] >= 1 and all(1.45 <= z <= 3.1 for z in r["points_z"])
sys.exit(0 if ok else 1)
PY
kill -INT "$depth_pid"; wait "$depth_pid"

# 6. two targets by id (max_targets 2), the bundled RGB-T demo model; ~/reset_target forgets one
"$WS/install/patrack/lib/patrack/patrack_node" --ros-args --params-file "$share/config/patrack.yaml" \
  --params-file "$share/config/rgbt.yaml" -p device:=cpu -p precision:=fp32 -p max_targets:=2 \
  -p tracker.lost_frames:=0 -p model_path:="$ROOT/models/patrack_small_rgbt.safetensors" >"$WS/node-two.log" 2>&1 &
two_pid=$!
for _ in $(seq 60); do ros2 node list 2>/dev/null | grep -q '^/patrack$' && break; sleep 1; done
report=$(python3 "$ROOT/scripts/ros_peer.py" --two --pairs 30 --rate-hz 10)
echo "    two-target peer: $report"
python3 - "$report" <<'PY' && pass "two targets: detections with ids a and b, only b after ~/reset_target a" || fail "two targets: $report"
import json, sys
r = json.loads(sys.argv[1])
ok = r["both_before_reset"] >= 8 and r["only_b_after_reset"] >= 4 and r["with_a_after_reset"] == 0 \
    and r["ids_seen"] == ["a", "b"]
sys.exit(0 if ok else 1)
PY
kill -INT "$two_pid"; wait "$two_pid"

# 7. launch, each modality, simulated time
for modality in thermal depth event; do
  # A script's background jobs start with SIGINT ignored, and ros2 launch (Python) then never sees
  # the Ctrl-C sent below: give it the default handling back.
  env --default-signal=INT ros2 launch patrack patrack.launch.py modality:=$modality use_sim_time:=True device:=cpu \
    params_file:="$WS/extra.yaml" >"$WS/launch-$modality.log" 2>&1 &
  launch_pid=$!
  for _ in $(seq 60); do ros2 node list 2>/dev/null | grep -q '^/patrack$' && break; sleep 1; done
  m=$(ros2 param get /patrack modality 2>&1); s=$(ros2 param get /patrack use_sim_time 2>&1)
  echo "    $modality: $m; $s"
  echo "$m" | grep -q "$modality" && echo "$s" | grep -q "True" && pass "ros2 launch modality:=$modality use_sim_time:=True" \
    || { fail "launch $modality: $m / $s"; tail -5 "$WS/launch-$modality.log"; }
  kill -INT "$launch_pid"; wait "$launch_pid" 2>/dev/null
  sleep 1
  if pgrep -f lib/patrack/patrack_node >/dev/null; then
    fail "Ctrl-C on ros2 launch left the node running"; pkill -KILL -f lib/patrack/patrack_node
  else
    pass "Ctrl-C on ros2 launch ($modality) stops the node"
  fi
done
exit "$failures"
INSIDE
# The launch runs use the tiny test model (no weights) on the CPU.
cat >"$ws/extra.yaml" <<'YAML'
/**:
  ros__parameters:
    model_config: "tiny"
    precision: "fp32"
YAML

is_root=$([ "$(id -u)" = 0 ] && echo 1 || echo 0)
flags=(--net); [ "$is_root" = 1 ] || flags=(--map-root-user --net)
WS="$ws" ROOT="$root" unshare "${flags[@]}" -- bash "$ws/inside.sh"
inside=$?
failures=$((failures + inside))
echo
if [ "$failures" = 0 ]; then echo "ros-check: all checks passed (ROS $ROS_DISTRO)"; else echo "ros-check: $failures check(s) failed"; fi
[ -n "$keep" ] || rm -rf "$ws"
[ "$failures" = 0 ]
