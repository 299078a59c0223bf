#!/usr/bin/env bash
# Writes the seeds of the `cdr` fuzz target (fuzz/corpus/cdr/seed-*) from the CDR fixtures in
# tests/data/ros/jazzy (written by rosbags, see tests/data/ros/README.md): one selector byte, then
# the message. Selectors (fuzz/src/targets.rs, `cdr`): 0-9 the inputs in `Input::ALL` order,
# 10-22 the services in `Service::ALL` order.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
fixtures="$root/tests/data/ros/jazzy"
out="$root/fuzz/corpus/cdr"
mkdir -p "$out"
rm -f "$out"/seed-*
seed() { # selector name fixture
    { printf "\\x$(printf %02x "$1")"; cat "$fixtures/$3"; } >"$out/seed-$(printf %02d "$1")-$2-$3"
}
for f in image_32fc1.cdr image_32fc1.be.cdr image_mono16_is_bigendian0.cdr image_mono16_is_bigendian0.be.cdr \
    image_mono16_is_bigendian1.cdr image_rgb8_padded.cdr; do
    seed 0 rgb "$f"
    seed 1 aux "$f"
done
seed 2 rgb_compressed compressed_png.cdr
seed 3 aux_compressed compressed_png.cdr
seed 4 aux_compressed_depth compressed_png.cdr
seed 5 init detection2d.cdr
seed 6 init_roi roi.cdr
seed 7 reset empty.cdr
seed 8 rgb_camera_info camera_info.cdr
seed 8 rgb_camera_info camera_info.be.cdr
seed 9 reset_target string_target_id.cdr
seed 9 reset_target string_target_id.be.cdr
seed 10 get_parameters get_parameters_request.cdr
seed 11 get_parameter_types get_parameters_request.cdr
seed 12 set_parameters set_parameters_request.cdr
seed 12 set_parameters set_parameters_request.be.cdr
seed 13 set_parameters_atomically set_parameters_request.cdr
seed 14 describe_parameters get_parameters_request.cdr
seed 15 list_parameters list_parameters_request.cdr
seed 15 list_parameters list_parameters_request.be.cdr
seed 16 change_state change_state_request.cdr
for s in 17:get_state 18:get_available_states 19:get_available_transitions 20:get_transition_graph 21:reset_service; do
    seed "${s%%:*}" "${s#*:}" get_state_request.cdr
done
seed 22 enable set_bool_request.cdr
