#!/usr/bin/env python3
"""Generate the ROS 2 message fixtures under tests/data/ros/ with PyPI `rosbags` (no ROS needed).

    python3 -m venv .venv && .venv/bin/pip install -r scripts/requirements-test.txt
    .venv/bin/python scripts/make_fixtures.py

Writes, for the ROS2_HUMBLE and ROS2_JAZZY type stores:
  tests/data/ros/<store>/<sample>.cdr       CDR with the 4-byte encapsulation header, little endian
  tests/data/ros/<store>/<sample>.be.cdr    the same message big endian (only some samples)
and store-independent:
  tests/data/ros/samples.json               per sample: ROS type name and the field values
                                            (the JSON form of the Rust mirror structs), plus the
                                            ros2msg schema text rosbags generates per type and store
  tests/data/ros/sample_mcap/               a rosbag2 (version 8) MCAP bag: rgb8 + mono16 frames of
                                            a moving square with different stamps, and ground truth

vision_msgs is not built into rosbags; it is registered from this repository's msg/ files, so the
vision_msgs fixtures check that our .msg text and the Rust structs agree with rosbags' CDR codec.
The output is deterministic: running the script twice gives identical files.
"""

from __future__ import annotations

import json
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.base import Nodetype

ROOT = Path(__file__).resolve().parent.parent
MSG_DIR = ROOT / "msg"
OUT = ROOT / "tests" / "data" / "ros"
STORES = {"humble": Stores.ROS2_HUMBLE, "jazzy": Stores.ROS2_JAZZY}

# Element types of numeric arrays/sequences -> numpy dtypes (rosbags wants ndarrays for these).
NUMPY_DTYPES = {
    "bool": np.bool_, "uint8": np.uint8, "byte": np.uint8, "char": np.uint8, "int8": np.int8,
    "uint16": np.uint16, "int16": np.int16, "uint32": np.uint32, "int32": np.int32,
    "uint64": np.uint64, "int64": np.int64, "float32": np.float32, "float64": np.float64,
}


# Services are not in rosbags' type stores: their request and response halves are registered from
# the .srv text of rcl_interfaces, lifecycle_msgs and std_srvs (Humble and Jazzy agree), so these
# fixtures check the serde layout of the Rust structs against rosbags' CDR codec; the messages
# they use (ParameterValue, ParameterDescriptor, State, ...) are the type stores' own.
SRV_HALVES = {
    "rcl_interfaces/srv/GetParameters_Request": "string[] names",
    "rcl_interfaces/srv/GetParameters_Response": "rcl_interfaces/ParameterValue[] values",
    "rcl_interfaces/srv/SetParameters_Request": "rcl_interfaces/Parameter[] parameters",
    "rcl_interfaces/srv/SetParameters_Response": "rcl_interfaces/SetParametersResult[] results",
    "rcl_interfaces/srv/SetParametersAtomically_Response": "rcl_interfaces/SetParametersResult result",
    "rcl_interfaces/srv/ListParameters_Request": "string[] prefixes\nuint64 depth",
    "rcl_interfaces/srv/ListParameters_Response": "rcl_interfaces/ListParametersResult result",
    "rcl_interfaces/srv/DescribeParameters_Response": "rcl_interfaces/ParameterDescriptor[] descriptors",
    "rcl_interfaces/srv/GetParameterTypes_Response": "uint8[] types",
    "lifecycle_msgs/srv/ChangeState_Request": "lifecycle_msgs/Transition transition",
    "lifecycle_msgs/srv/ChangeState_Response": "bool success",
    # rosidl gives an empty request this one placeholder field.
    "lifecycle_msgs/srv/GetState_Request": "uint8 structure_needs_at_least_one_member",
    "lifecycle_msgs/srv/GetState_Response": "lifecycle_msgs/State current_state",
    "lifecycle_msgs/srv/GetAvailableTransitions_Response":
        "lifecycle_msgs/TransitionDescription[] available_transitions",
    "std_srvs/srv/SetBool_Request": "bool data",
    "std_srvs/srv/Trigger_Response": "bool success\nstring message",
}


def make_typestore(store):
    ts = get_typestore(store)
    types = {}
    for path in sorted((MSG_DIR / "vision_msgs").glob("*.msg")):
        types.update(get_types_from_msg(path.read_text(), f"vision_msgs/msg/{path.stem}"))
    for name, text in SRV_HALVES.items():
        # rosbags files every registered type under `<pkg>/msg/`; keep the rosidl name.
        ((_key, definition),) = get_types_from_msg(text, name).items()
        types[name] = definition
    ts.register(types)
    return ts


def build(ts, typename, value):
    """Turn a JSON-style dict into a rosbags message object, following the type store's field defs."""
    _consts, fields = ts.fielddefs[typename]
    kwargs = {}
    for name, (nodetype, detail) in fields:
        if name == "structure_needs_at_least_one_member":
            kwargs[name] = value.get(name, 0)
            continue
        v = value[name]
        if nodetype == Nodetype.BASE:
            kwargs[name] = v
        elif nodetype == Nodetype.NAME:
            kwargs[name] = build(ts, detail, v)
        else:  # ARRAY or SEQUENCE: detail = ((element nodetype, element detail), length or bound)
            (elem_type, elem_detail), _len = detail
            if elem_type == Nodetype.BASE and elem_detail[0] in NUMPY_DTYPES:
                kwargs[name] = np.array(v, dtype=NUMPY_DTYPES[elem_detail[0]])
            elif elem_type == Nodetype.BASE:
                kwargs[name] = list(v)
            else:
                kwargs[name] = [build(ts, elem_detail, e) for e in v]
    return ts.types[typename](**kwargs)


# ---------------------------------------------------------------------------------------------
# Sample values. Floats are chosen exactly representable so the JSON round trip is exact.

def stamp(sec, nanosec):
    return {"sec": sec, "nanosec": nanosec}


def header(sec, nanosec, frame_id):
    return {"stamp": stamp(sec, nanosec), "frame_id": frame_id}


MONO16_PIXELS = [0, 1, 255, 256, 4095, 4096, 32767, 32768, 40000, 65534, 65535, 12345]  # 4 x 3


def mono16_image(big_endian):
    fmt = ">" if big_endian else "<"
    data = struct.pack(f"{fmt}{len(MONO16_PIXELS)}H", *MONO16_PIXELS)
    return {
        "header": header(1700000000, 500000000, "thermal_optical_frame"),
        "height": 3, "width": 4, "encoding": "mono16", "is_bigendian": 1 if big_endian else 0,
        "step": 8, "data": list(data),
    }


def rgb8_padded_image():
    width, height, step = 5, 3, 16  # 15 bytes of pixels + 1 padding byte per row
    data = []
    pixels = []
    for y in range(height):
        row = []
        for x in range(width):
            px = [(40 * x + y) % 256, (17 * y + 3 * x) % 256, (255 - 11 * x - 7 * y) % 256]
            row.append(px)
            data += px
        data.append(0xEE)  # padding: must be skipped by readers
        pixels.append(row)
    return {
        "header": header(1700000001, 33333333, "camera_color_optical_frame"),
        "height": height, "width": width, "encoding": "rgb8", "is_bigendian": 0,
        "step": step, "data": data,
    }, pixels


FLOAT_PIXELS = [0.0, 1.5, -2.25, 1000.0, 0.125, 3.0e-5, 65504.0, -0.0]  # 4 x 2, metres or kelvin


def f32c1_image():
    data = struct.pack("<8f", *FLOAT_PIXELS)
    return {
        "header": header(1700000002, 0, "depth_optical_frame"),
        "height": 2, "width": 4, "encoding": "32FC1", "is_bigendian": 0, "step": 16,
        "data": list(data),
    }


def png_rgb8(width, height, rgb):
    """A minimal valid PNG (8-bit RGB, no filter) so image decoders can open the fixture."""
    def chunk(kind, payload):
        crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    raw = b"".join(b"\x00" + bytes(rgb[y * width * 3:(y + 1) * width * 3]) for y in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b""))


def covariance(seed):
    return [float((i * 7 + seed) % 13) * 0.25 for i in range(36)]


def hypothesis(class_id, score, x, y, seed):
    return {
        "hypothesis": {"class_id": class_id, "score": score},
        "pose": {
            "pose": {
                "position": {"x": x, "y": y, "z": 0.0},
                "orientation": {"x": 0.0, "y": 0.0, "z": 0.0, "w": 1.0},
            },
            "covariance": covariance(seed),
        },
    }


def detection(hdr, results, cx, cy, theta, sx, sy, det_id):
    return {
        "header": hdr,
        "results": results,
        "bbox": {"center": {"position": {"x": cx, "y": cy}, "theta": theta},
                 "size_x": sx, "size_y": sy},
        "id": det_id,
    }


def samples():
    rgb, rgb_pixels = rgb8_padded_image()
    png = png_rgb8(2, 2, [255, 0, 0, 0, 255, 0, 0, 0, 255, 128, 128, 128])
    det_header = header(1700000003, 250000000, "camera_color_optical_frame")
    two = [
        detection(det_header, [hypothesis("person", 0.875, 120.5, 64.25, 1)],
                  120.5, 64.25, 0.0, 40.0, 80.5, "track-1"),
        detection(det_header, [hypothesis("car", 0.5, 300.0, 200.0, 2),
                               hypothesis("truck", 0.25, 301.5, 199.5, 3)],
                  300.0, 200.0, 0.125, 96.0, 48.0, "7"),
    ]
    def pvalue(kind, **fields):
        v = {"type": kind, "bool_value": False, "integer_value": 0, "double_value": 0.0, "string_value": "",
             "byte_array_value": [], "bool_array_value": [], "integer_array_value": [],
             "double_array_value": [], "string_array_value": []}
        v.update(fields)
        return v

    def state(i, label):
        return {"id": i, "label": label}

    params = [
        {"name": "tracker.lost_threshold", "value": pvalue(3, double_value=0.4)},
        {"name": "class_id", "value": pvalue(4, string_value="person")},
        {"name": "initial_bbox", "value": pvalue(8, double_array_value=[1.5, 2.0, 30.0, 40.25])},
        {"name": "enabled", "value": pvalue(1, bool_value=True)},
        {"name": "tracker.lost_frames", "value": pvalue(2, integer_value=-7)},
        {"name": "bytes", "value": pvalue(5, byte_array_value=[0, 255, 7])},
    ]
    descriptor = {"name": "tracker.lost_threshold", "type": 3, "description": "windowed score",
                  "additional_constraints": "", "read_only": False, "dynamic_typing": False,
                  "floating_point_range": [{"from_value": 0.0, "to_value": 1.0, "step": 0.0}],
                  "integer_range": []}
    int_descriptor = {"name": "rgb.depth", "type": 2, "description": "", "additional_constraints": "",
                      "read_only": True, "dynamic_typing": False, "floating_point_range": [],
                      "integer_range": [{"from_value": 1, "to_value": 100, "step": 0}]}
    configure = {"transition": {"id": 1, "label": "configure"},
                 "start_state": state(1, "unconfigured"), "goal_state": state(10, "configuring")}
    node_services = [
        ("parameter_event", "rcl_interfaces/msg/ParameterEvent",
         {"stamp": stamp(1700000006, 5), "node": "/robot/patrack", "new_parameters": params[:3],
          "changed_parameters": params[3:], "deleted_parameters": []}, {}, True),
        ("get_parameters_request", "rcl_interfaces/srv/GetParameters_Request",
         {"names": ["model_path", "sync.queue_size"]}, {}, False),
        ("get_parameters_response", "rcl_interfaces/srv/GetParameters_Response",
         {"values": [p["value"] for p in params]}, {}, False),
        ("set_parameters_request", "rcl_interfaces/srv/SetParameters_Request", {"parameters": params}, {}, True),
        ("set_parameters_response", "rcl_interfaces/srv/SetParameters_Response",
         {"results": [{"successful": True, "reason": ""},
                      {"successful": False, "reason": "parameter `model_path` is read-only"}]}, {}, False),
        ("set_parameters_atomically_response", "rcl_interfaces/srv/SetParametersAtomically_Response",
         {"result": {"successful": False, "reason": "need low < high"}}, {}, False),
        ("list_parameters_request", "rcl_interfaces/srv/ListParameters_Request",
         {"prefixes": ["tracker"], "depth": 2}, {}, True),
        ("list_parameters_response", "rcl_interfaces/srv/ListParameters_Response",
         {"result": {"names": ["tracker.lost_threshold", "model_path"], "prefixes": ["tracker"]}}, {}, False),
        ("describe_parameters_response", "rcl_interfaces/srv/DescribeParameters_Response",
         {"descriptors": [descriptor, int_descriptor]}, {}, True),
        ("get_parameter_types_response", "rcl_interfaces/srv/GetParameterTypes_Response",
         {"types": [3, 0, 8]}, {}, False),
        ("transition_event", "lifecycle_msgs/msg/TransitionEvent",
         dict(configure, timestamp=1700000007000000001), {}, True),
        ("change_state_request", "lifecycle_msgs/srv/ChangeState_Request",
         {"transition": {"id": 0, "label": "configure"}}, {}, False),
        ("change_state_response", "lifecycle_msgs/srv/ChangeState_Response", {"success": True}, {}, False),
        ("get_state_request", "lifecycle_msgs/srv/GetState_Request",
         {"structure_needs_at_least_one_member": 0}, {}, False),
        ("get_state_response", "lifecycle_msgs/srv/GetState_Response",
         {"current_state": state(3, "active")}, {}, False),
        ("get_available_transitions_response", "lifecycle_msgs/srv/GetAvailableTransitions_Response",
         {"available_transitions": [configure]}, {}, False),
        ("set_bool_request", "std_srvs/srv/SetBool_Request", {"data": True}, {}, False),
        ("trigger_response", "std_srvs/srv/Trigger_Response",
         {"success": False, "message": "nothing to reset in state unconfigured"}, {}, False),
        ("classification", "vision_msgs/msg/Classification",
         {"header": det_header, "results": [{"class_id": "target", "score": 0.625}]}, {}, True),
    ]
    pose = {"position": {"x": 0.25, "y": -0.125, "z": 1.5},
            "orientation": {"x": 0.0, "y": 0.0, "z": 0.0, "w": 1.0}}
    colour = {"r": 1.0, "g": 0.5, "b": 0.0, "a": 0.75}

    def marker(mtype, action, mid, text="", **fields):
        m = {"header": det_header, "ns": "patrack", "id": mid, "type": mtype, "action": action,
             "pose": pose, "scale": {"x": 0.5, "y": 0.25, "z": 0.125}, "color": colour,
             "lifetime": {"sec": 1, "nanosec": 500000000}, "frame_locked": False,
             "points": [], "colors": [], "texture_resource": "",
             "texture": {"header": header(0, 0, ""), "format": "", "data": []},
             "uv_coordinates": [], "text": text, "mesh_resource": "",
             "mesh_file": {"filename": "", "data": []}, "mesh_use_embedded_materials": False}
        m.update(fields)
        return m

    markers = [
        marker(1, 0, 0),
        marker(9, 0, 1, text="1 target 0.88"),
        # Every sequence and nested message filled, so their positions are checked too.
        marker(11, 0, 2, points=[{"x": 1.0, "y": 2.0, "z": 3.0}, {"x": -1.0, "y": 0.5, "z": 0.0}],
               colors=[colour, {"r": 0.0, "g": 0.0, "b": 1.0, "a": 1.0}],
               texture_resource="embedded://tex",
               texture={"header": header(3, 4, "tex"), "format": "png", "data": [1, 2, 3]},
               uv_coordinates=[{"u": 0.5, "v": 0.25}], mesh_resource="package://x/m.dae",
               mesh_file={"filename": "m.dae", "data": [9, 8]}, mesh_use_embedded_materials=True,
               frame_locked=True),
        marker(0, 3, 0),
    ]
    camera_info = {
        "header": header(1700000008, 33333333, "camera_color_optical_frame"),
        "height": 480, "width": 640, "distortion_model": "plumb_bob",
        "d": [0.125, -0.25, 0.0009765625, -0.001953125, 0.0625],
        "k": [615.25, 0.0, 319.5, 0.0, 615.5, 239.75, 0.0, 0.0, 1.0],
        "r": [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        "p": [615.25, 0.0, 319.5, 0.0, 0.0, 615.5, 239.75, 0.0, 0.0, 0.0, 1.0, 0.0],
        "binning_x": 0, "binning_y": 2,
        "roi": {"x_offset": 0, "y_offset": 0, "height": 0, "width": 0, "do_rectify": False},
    }
    detection3d = {
        "header": det_header,
        "results": [hypothesis("target", 0.875, 0.25, -0.125, 4)],
        "bbox": {"center": pose, "size": {"x": 0.5, "y": 0.75, "z": 0.5}},
        "id": "3",
    }
    outputs_3d = [
        ("camera_info", "sensor_msgs/msg/CameraInfo", camera_info, {}, True),
        ("point_stamped", "geometry_msgs/msg/PointStamped",
         {"header": det_header, "point": {"x": 0.25, "y": -0.125, "z": 1.5}}, {}, True),
        ("duration", "builtin_interfaces/msg/Duration", {"sec": -3, "nanosec": 999999999}, {}, False),
        ("detection3d_array_one", "vision_msgs/msg/Detection3DArray",
         {"header": det_header, "detections": [detection3d]}, {}, True),
        ("detection3d_array_empty", "vision_msgs/msg/Detection3DArray",
         {"header": det_header, "detections": []}, {}, False),
        ("marker_array", "visualization_msgs/msg/MarkerArray", {"markers": markers}, {}, True),
        ("marker_array_empty", "visualization_msgs/msg/MarkerArray", {"markers": []}, {}, False),
    ]
    return node_services + outputs_3d + [
        # name, type, value, extra JSON facts (not message fields), write big endian too
        ("header_unicode", "std_msgs/msg/Header",
         header(-5, 999999999, "kamera_ü_热像_🛰"), {}, True),
        ("time", "builtin_interfaces/msg/Time", stamp(2147483647, 4294967295), {}, False),
        ("clock", "rosgraph_msgs/msg/Clock", {"clock": stamp(42, 1000)}, {}, False),
        ("float32", "std_msgs/msg/Float32", {"data": 0.8125}, {}, True),
        ("empty", "std_msgs/msg/Empty", {"structure_needs_at_least_one_member": 0}, {}, False),
        ("string_target_id", "std_msgs/msg/String", {"data": "boat_2 🛥"}, {}, True),
        ("image_mono16_is_bigendian0", "sensor_msgs/msg/Image", mono16_image(False),
         {"pixels": MONO16_PIXELS}, True),
        ("image_mono16_is_bigendian1", "sensor_msgs/msg/Image", mono16_image(True),
         {"pixels": MONO16_PIXELS}, False),
        ("image_rgb8_padded", "sensor_msgs/msg/Image", rgb, {"pixels": rgb_pixels}, False),
        ("image_32fc1", "sensor_msgs/msg/Image", f32c1_image(), {"pixels": FLOAT_PIXELS}, True),
        ("compressed_png", "sensor_msgs/msg/CompressedImage",
         {"header": header(1700000004, 1, "camera_color_optical_frame"),
          "format": "rgb8; png compressed rgb8", "data": list(png)},
         {"pixels": [[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [128, 128, 128]]]}, False),
        ("roi", "sensor_msgs/msg/RegionOfInterest",
         {"x_offset": 10, "y_offset": 20, "height": 30, "width": 40, "do_rectify": True}, {}, False),
        ("pose_with_covariance", "geometry_msgs/msg/PoseWithCovariance",
         hypothesis("x", 0.0, 1.5, -2.5, 5)["pose"], {}, True),
        ("detection2d", "vision_msgs/msg/Detection2D", two[0], {}, False),
        ("detection2d_array_empty", "vision_msgs/msg/Detection2DArray",
         {"header": det_header, "detections": []}, {}, False),
        ("detection2d_array_two", "vision_msgs/msg/Detection2DArray",
         {"header": det_header, "detections": two}, {}, True),
        ("diagnostic_array", "diagnostic_msgs/msg/DiagnosticArray",
         {"header": header(1700000005, 0, ""),
          "status": [
              {"level": 0, "name": "patrack: tracker", "message": "tracking",
               "hardware_id": "cuda:0",
               "values": [{"key": "inference_ms", "value": "12.5"},
                          {"key": "state", "value": "tracking"}]},
              {"level": 1, "name": "patrack: sync", "message": "drop rate high",
               "hardware_id": "", "values": []},
          ]}, {}, False),
    ]


# ---------------------------------------------------------------------------------------------
# The MCAP bag: a bright square moving right; RGB at 30 Hz, thermal stamped 4 ms later.

BAG_RGB_TOPIC = "/camera/rgb/image_raw"
BAG_AUX_TOPIC = "/camera/thermal/image_raw"
BAG_GT_TOPIC = "/gt/detections"
BAG_FRAMES = 8
BAG_T0_NS = 1700000100 * 10**9
BAG_PERIOD_NS = 33333333
BAG_AUX_OFFSET_NS = 4000000
RGB_W, RGB_H, AUX_W, AUX_H = 64, 48, 32, 24
SQUARE_PX = 12  # side in RGB pixels; the thermal camera sees the same scene at half resolution


def square_xy(i):
    return 8 + 4 * i, 14 + i  # top-left corner in RGB pixels


def time_of(ns):
    return stamp(ns // 10**9, ns % 10**9)


def write_bag(ts, path):
    if path.exists():
        shutil.rmtree(path)
    truth = []
    with Writer(path, version=8, storage_plugin=StoragePlugin.MCAP) as writer:
        rgb_conn = writer.add_connection(BAG_RGB_TOPIC, "sensor_msgs/msg/Image", typestore=ts)
        aux_conn = writer.add_connection(BAG_AUX_TOPIC, "sensor_msgs/msg/Image", typestore=ts)
        gt_conn = writer.add_connection(BAG_GT_TOPIC, "vision_msgs/msg/Detection2DArray",
                                        typestore=ts)
        for i in range(BAG_FRAMES):
            x, y = square_xy(i)
            rgb_ns = BAG_T0_NS + i * BAG_PERIOD_NS
            aux_ns = rgb_ns + BAG_AUX_OFFSET_NS
            rgb = np.full((RGB_H, RGB_W, 3), (90, 100, 110), dtype=np.uint8)
            rgb[y:y + SQUARE_PX, x:x + SQUARE_PX] = (230, 40, 30)
            aux = np.full((AUX_H, AUX_W), 1000, dtype="<u2")
            aux[y // 2:(y + SQUARE_PX) // 2, x // 2:(x + SQUARE_PX) // 2] = 30000 + 100 * i
            rgb_msg = {"header": header(**time_of(rgb_ns), frame_id="camera_color_optical_frame"),
                       "height": RGB_H, "width": RGB_W, "encoding": "rgb8", "is_bigendian": 0,
                       "step": RGB_W * 3, "data": rgb.reshape(-1)}
            aux_msg = {"header": header(**time_of(aux_ns), frame_id="thermal_optical_frame"),
                       "height": AUX_H, "width": AUX_W, "encoding": "mono16", "is_bigendian": 0,
                       "step": AUX_W * 2, "data": aux.view(np.uint8).reshape(-1)}
            cx, cy = x + SQUARE_PX / 2, y + SQUARE_PX / 2
            gt_header = header(**time_of(rgb_ns), frame_id="camera_color_optical_frame")
            gt_msg = {"header": gt_header, "detections": [
                detection(gt_header, [hypothesis("square", 1.0, cx, cy, 0)], cx, cy, 0.0,
                          float(SQUARE_PX), float(SQUARE_PX), "1")]}
            # Log (receive) time: RGB first, then the later-stamped thermal frame and the truth.
            writer.write(rgb_conn, rgb_ns, ts.serialize_cdr(build(ts, "sensor_msgs/msg/Image",
                                                                   rgb_msg), rgb_conn.msgtype))
            writer.write(aux_conn, aux_ns, ts.serialize_cdr(build(ts, "sensor_msgs/msg/Image",
                                                                   aux_msg), aux_conn.msgtype))
            writer.write(gt_conn, aux_ns + 1, ts.serialize_cdr(
                build(ts, "vision_msgs/msg/Detection2DArray", gt_msg), gt_conn.msgtype))
            truth.append({"rgb_stamp_ns": rgb_ns, "aux_stamp_ns": aux_ns,
                          "box_xywh_px": [x, y, SQUARE_PX, SQUARE_PX]})
    check_bag(ts, path, truth)
    return truth


def check_bag(ts, path, truth):
    """Read the bag back: every message decodes and the stamps are the ones written."""
    stamps = {BAG_RGB_TOPIC: [], BAG_AUX_TOPIC: [], BAG_GT_TOPIC: []}
    with Reader(path) as reader:
        for connection, _log_time, raw in reader.messages():
            msg = ts.deserialize_cdr(raw, connection.msgtype)
            stamps[connection.topic].append(msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec)
    assert stamps[BAG_RGB_TOPIC] == [f["rgb_stamp_ns"] for f in truth]
    assert stamps[BAG_AUX_TOPIC] == [f["aux_stamp_ns"] for f in truth]
    assert stamps[BAG_GT_TOPIC] == stamps[BAG_RGB_TOPIC]


def to_json(manifest):
    """Pretty at the top, one line per sample, schema and frame: readable diffs, small file."""
    def one(v):
        return json.dumps(v, ensure_ascii=False, separators=(",", ":"))

    lines = ["{"]
    keys = list(manifest)
    for k_i, key in enumerate(keys):
        value = manifest[key]
        comma = "," if k_i + 1 < len(keys) else ""
        if isinstance(value, list) and value and isinstance(value[0], dict):
            lines.append(f" {one(key)}: [")
            lines += [f"  {one(v)}" + ("," if i + 1 < len(value) else "") for i, v in enumerate(value)]
            lines.append(f" ]{comma}")
        elif isinstance(value, dict):
            lines.append(f" {one(key)}: {{")
            items = list(value.items())
            lines += [f"  {one(k)}: {one(v)}" + ("," if i + 1 < len(items) else "")
                      for i, (k, v) in enumerate(items)]
            lines.append(f" }}{comma}")
        else:
            lines.append(f" {one(key)}: {one(value)}{comma}")
    lines.append("}")
    text = "\n".join(lines) + "\n"
    assert json.loads(text) == manifest
    return text


def main():
    listing = samples()
    manifest = {"generator": "scripts/make_fixtures.py", "rosbags": "0.11.9",
                "stores": list(STORES), "samples": [], "schemas": {}}
    # Every mirrored type, named by its msg/<pkg>/<Type>.msg file.
    types_used = sorted(f"{p.parent.name}/msg/{p.stem}" for p in MSG_DIR.glob("*/*.msg"))
    for store_name, store in STORES.items():
        ts = make_typestore(store)
        out = OUT / store_name
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        for name, typename, value, _extra, with_be in listing:
            msg = build(ts, typename, value)
            (out / f"{name}.cdr").write_bytes(ts.serialize_cdr(msg, typename))
            if with_be:
                (out / f"{name}.be.cdr").write_bytes(
                    ts.serialize_cdr(msg, typename, little_endian=False))
            # Round trip through rosbags itself so a wrong sample value cannot pass silently.
            back = ts.deserialize_cdr((out / f"{name}.cdr").read_bytes(), typename)
            assert ts.serialize_cdr(back, typename) == (out / f"{name}.cdr").read_bytes()
        manifest["schemas"][store_name] = {
            t: ts.generate_msgdef(t, ros_version=2)[0] for t in types_used}
    for name, typename, value, extra, with_be in listing:
        entry = {"name": name, "type": typename, "value": value, "big_endian_file": with_be}
        entry.update(extra)
        manifest["samples"].append(entry)

    ts = make_typestore(Stores.ROS2_JAZZY)
    truth = write_bag(ts, OUT / "sample_mcap")
    manifest["sample_mcap"] = {
        "path": "sample_mcap", "version": 8, "storage": "mcap",
        "topics": {"rgb": BAG_RGB_TOPIC, "aux": BAG_AUX_TOPIC, "truth": BAG_GT_TOPIC},
        "rgb": {"width": RGB_W, "height": RGB_H, "encoding": "rgb8"},
        "aux": {"width": AUX_W, "height": AUX_H, "encoding": "mono16"},
        "period_ns": BAG_PERIOD_NS, "aux_offset_ns": BAG_AUX_OFFSET_NS, "frames": truth,
    }
    (OUT / "samples.json").write_text(to_json(manifest))
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"wrote {OUT.relative_to(ROOT)} ({total} bytes)")


if __name__ == "__main__":
    main()
