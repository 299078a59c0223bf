#!/usr/bin/env python3
"""Wire-test peer for tests/wire.rs: a plain Cyclone DDS participant (PyPI `cyclonedds`) that
speaks the ROS 2 type and topic names, publishes RGB + aux image streams with jittered stamps
and an init message, and records what the patrack node answers. With --modality depth the aux
stream is 16UC1 depth, a CameraInfo goes with every RGB frame, and the 3D outputs
(~/target_point, ~/detections_3d) are recorded too.

Runs inside `unshare -n` (loopback only) next to `patrack node`. Writes a JSON report to the
path given by --report; tests/wire.rs makes the assertions. Bounded: gives up after --timeout-s.
"""

import argparse
import json
import random
import sys
import time
from dataclasses import dataclass, field

from cyclonedds.core import Policy, Qos
from cyclonedds.domain import DomainParticipant
from cyclonedds.idl import IdlStruct
from cyclonedds.idl.types import array, float64, int32, sequence, uint8, uint32
from cyclonedds.pub import DataWriter
from cyclonedds.sub import DataReader
from cyclonedds.topic import Topic
from cyclonedds.util import duration
from cyclonedds.idl import _machinery


# cyclonedds packs uint8[] element by element (0.2 s per 640x480 frame). The wire format of
# uint8[] is a length and the raw bytes, so write and read them in one go.
_seq_serialize = _machinery.PlainCdrV2SequenceOfPrimitiveMachine.serialize
_seq_deserialize = _machinery.PlainCdrV2SequenceOfPrimitiveMachine.deserialize


def _bytes_serialize(self, buffer, value, *args, **kwargs):
    if self.code == "B" and isinstance(value, (bytes, bytearray)):
        buffer.align(4)
        buffer.write("I", 4, len(value))
        buffer.write_bytes(bytes(value))
        return None
    return _seq_serialize(self, buffer, value, *args, **kwargs)


def _bytes_deserialize(self, buffer, *args, **kwargs):
    if self.code == "B":
        buffer.align(4)
        return buffer.read_bytes(buffer.read("I", 4))
    return _seq_deserialize(self, buffer, *args, **kwargs)


_machinery.PlainCdrV2SequenceOfPrimitiveMachine.serialize = _bytes_serialize
_machinery.PlainCdrV2SequenceOfPrimitiveMachine.deserialize = _bytes_deserialize


@dataclass
class Time(IdlStruct, typename="builtin_interfaces::msg::dds_::Time_"):
    sec: int32 = 0
    nanosec: uint32 = 0


@dataclass
class Header(IdlStruct, typename="std_msgs::msg::dds_::Header_"):
    stamp: Time = field(default_factory=Time)
    frame_id: str = ""


@dataclass
class Image(IdlStruct, typename="sensor_msgs::msg::dds_::Image_"):
    header: Header = field(default_factory=Header)
    height: uint32 = 0
    width: uint32 = 0
    encoding: str = ""
    is_bigendian: uint8 = 0
    step: uint32 = 0
    data: sequence[uint8] = b""


@dataclass
class Point2D(IdlStruct, typename="vision_msgs::msg::dds_::Point2D_"):
    x: float64 = 0.0
    y: float64 = 0.0


@dataclass
class Pose2D(IdlStruct, typename="vision_msgs::msg::dds_::Pose2D_"):
    position: Point2D = field(default_factory=Point2D)
    theta: float64 = 0.0


@dataclass
class BoundingBox2D(IdlStruct, typename="vision_msgs::msg::dds_::BoundingBox2D_"):
    center: Pose2D = field(default_factory=Pose2D)
    size_x: float64 = 0.0
    size_y: float64 = 0.0


@dataclass
class ObjectHypothesis(IdlStruct, typename="vision_msgs::msg::dds_::ObjectHypothesis_"):
    class_id: str = ""
    score: float64 = 0.0


@dataclass
class Point(IdlStruct, typename="geometry_msgs::msg::dds_::Point_"):
    x: float64 = 0.0
    y: float64 = 0.0
    z: float64 = 0.0


@dataclass
class Quaternion(IdlStruct, typename="geometry_msgs::msg::dds_::Quaternion_"):
    x: float64 = 0.0
    y: float64 = 0.0
    z: float64 = 0.0
    w: float64 = 1.0


@dataclass
class Pose(IdlStruct, typename="geometry_msgs::msg::dds_::Pose_"):
    position: Point = field(default_factory=Point)
    orientation: Quaternion = field(default_factory=Quaternion)


@dataclass
class PoseWithCovariance(IdlStruct, typename="geometry_msgs::msg::dds_::PoseWithCovariance_"):
    pose: Pose = field(default_factory=Pose)
    covariance: array[float64, 36] = field(default_factory=lambda: [0.0] * 36)


@dataclass
class ObjectHypothesisWithPose(IdlStruct, typename="vision_msgs::msg::dds_::ObjectHypothesisWithPose_"):
    hypothesis: ObjectHypothesis = field(default_factory=ObjectHypothesis)
    pose: PoseWithCovariance = field(default_factory=PoseWithCovariance)


@dataclass
class Detection2D(IdlStruct, typename="vision_msgs::msg::dds_::Detection2D_"):
    header: Header = field(default_factory=Header)
    results: sequence[ObjectHypothesisWithPose] = field(default_factory=list)
    bbox: BoundingBox2D = field(default_factory=BoundingBox2D)
    id: str = ""


@dataclass
class Detection2DArray(IdlStruct, typename="vision_msgs::msg::dds_::Detection2DArray_"):
    header: Header = field(default_factory=Header)
    detections: sequence[Detection2D] = field(default_factory=list)


@dataclass
class KeyValue(IdlStruct, typename="diagnostic_msgs::msg::dds_::KeyValue_"):
    key: str = ""
    value: str = ""


@dataclass
class DiagnosticStatus(IdlStruct, typename="diagnostic_msgs::msg::dds_::DiagnosticStatus_"):
    level: uint8 = 0
    name: str = ""
    message: str = ""
    hardware_id: str = ""
    values: sequence[KeyValue] = field(default_factory=list)


@dataclass
class DiagnosticArray(IdlStruct, typename="diagnostic_msgs::msg::dds_::DiagnosticArray_"):
    header: Header = field(default_factory=Header)
    status: sequence[DiagnosticStatus] = field(default_factory=list)


@dataclass
class RegionOfInterest(IdlStruct, typename="sensor_msgs::msg::dds_::RegionOfInterest_"):
    x_offset: uint32 = 0
    y_offset: uint32 = 0
    height: uint32 = 0
    width: uint32 = 0
    do_rectify: bool = False


@dataclass
class CameraInfo(IdlStruct, typename="sensor_msgs::msg::dds_::CameraInfo_"):
    header: Header = field(default_factory=Header)
    height: uint32 = 0
    width: uint32 = 0
    distortion_model: str = ""
    d: sequence[float64] = field(default_factory=list)
    k: array[float64, 9] = field(default_factory=lambda: [0.0] * 9)
    r: array[float64, 9] = field(default_factory=lambda: [0.0] * 9)
    p: array[float64, 12] = field(default_factory=lambda: [0.0] * 12)
    binning_x: uint32 = 0
    binning_y: uint32 = 0
    roi: RegionOfInterest = field(default_factory=RegionOfInterest)


@dataclass
class PointStamped(IdlStruct, typename="geometry_msgs::msg::dds_::PointStamped_"):
    header: Header = field(default_factory=Header)
    point: Point = field(default_factory=Point)


@dataclass
class Vector3(IdlStruct, typename="geometry_msgs::msg::dds_::Vector3_"):
    x: float64 = 0.0
    y: float64 = 0.0
    z: float64 = 0.0


@dataclass
class BoundingBox3D(IdlStruct, typename="vision_msgs::msg::dds_::BoundingBox3D_"):
    center: Pose = field(default_factory=Pose)
    size: Vector3 = field(default_factory=Vector3)


@dataclass
class Detection3D(IdlStruct, typename="vision_msgs::msg::dds_::Detection3D_"):
    header: Header = field(default_factory=Header)
    results: sequence[ObjectHypothesisWithPose] = field(default_factory=list)
    bbox: BoundingBox3D = field(default_factory=BoundingBox3D)
    id: str = ""


@dataclass
class Detection3DArray(IdlStruct, typename="vision_msgs::msg::dds_::Detection3DArray_"):
    header: Header = field(default_factory=Header)
    detections: sequence[Detection3D] = field(default_factory=list)


# The peer's RGB camera (pixel-centre convention): what --modality depth sends as CameraInfo.
FX, FY, CX, CY = 500.0, 510.0, 319.5, 239.5


def stamp_ns(header):
    return header.stamp.sec * 1_000_000_000 + header.stamp.nanosec


def make_time(ns):
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def rgb_frame(width, height, n):
    """rgb8: a grey gradient with a bright square moving right by 2 px per frame."""
    row = bytes((x * 255 // width) for x in range(width) for _ in range(3))
    data = bytearray(row * height)
    x0, y0, side = 200 + 2 * n, 180, 80
    square = bytes([240, 60, 40]) * side
    for y in range(y0, y0 + side):
        start = (y * width + x0) * 3
        data[start:start + side * 3] = square
    return bytes(data)


def thermal_frame(width, height, n):
    """mono16 little endian: a warm square on a cool background."""
    cool = (3000).to_bytes(2, "little") * width
    data = bytearray(cool * height)
    x0, y0, side = 100 + n, 90, 40
    warm = (3600).to_bytes(2, "little") * side
    for y in range(y0, y0 + side):
        start = (y * width + x0) * 2
        data[start:start + side * 2] = warm
    return bytes(data)


def depth_frame(width, height, n):
    """16UC1 little endian, millimetres: a square at 1.5 m where the RGB square is (half size),
    a wall at 4 m, a column of holes (0)."""
    wall = (4000).to_bytes(2, "little") * width
    data = bytearray(wall * height)
    x0, y0, side = 100 + n, 90, 40
    near = (1500).to_bytes(2, "little") * side
    for y in range(y0, y0 + side):
        start = (y * width + x0) * 2
        data[start:start + side * 2] = near
    for y in range(height):
        data[(y * width + 5) * 2:(y * width + 6) * 2] = bytes(2)
    return bytes(data)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--report", required=True)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--rate-hz", type=float, default=10.0)
    parser.add_argument("--init-after", type=int, default=5, help="send ~/init after this many frames")
    parser.add_argument("--timeout-s", type=float, default=90.0)
    parser.add_argument("--modality", choices=["thermal", "depth"], default="thermal")
    args = parser.parse_args()
    deadline = time.monotonic() + args.timeout_s
    rng = random.Random(7)

    dp = DomainParticipant(0)
    sensor_qos = Qos(Policy.Reliability.BestEffort, Policy.History.KeepLast(5))
    reliable = Qos(Policy.Reliability.Reliable(duration(seconds=1)), Policy.History.KeepLast(10))
    # Readers keep everything the node says, so nothing is lost to a slow poll.
    keep_all = Qos(Policy.Reliability.Reliable(duration(seconds=1)), Policy.History.KeepAll)

    rgb_writer = DataWriter(dp, Topic(dp, "rt/rgb/image", Image), qos=sensor_qos)
    aux_writer = DataWriter(dp, Topic(dp, "rt/aux/image", Image), qos=sensor_qos)
    init_writer = DataWriter(dp, Topic(dp, "rt/patrack/init", Detection2D), qos=reliable)
    det_reader = DataReader(dp, Topic(dp, "rt/patrack/detections", Detection2DArray), qos=keep_all)
    debug_reader = DataReader(dp, Topic(dp, "rt/patrack/debug_image", Image), qos=keep_all)
    diag_reader = DataReader(dp, Topic(dp, "rt/diagnostics", DiagnosticArray), qos=keep_all)
    depth = args.modality == "depth"
    if depth:
        info_writer = DataWriter(dp, Topic(dp, "rt/rgb/camera_info", CameraInfo), qos=sensor_qos)
        point_reader = DataReader(dp, Topic(dp, "rt/patrack/target_point", PointStamped), qos=keep_all)
        det3d_reader = DataReader(dp, Topic(dp, "rt/patrack/detections_3d", Detection3DArray), qos=keep_all)

    detections, debug_images, diagnostics, points, detections_3d = [], [], [], [], []

    def poll():
        for s in det_reader.take(N=1000):
            detections.append({
                "stamp_ns": stamp_ns(s.header),
                "frame_id": s.header.frame_id,
                "boxes": [[d.bbox.center.position.x, d.bbox.center.position.y, d.bbox.size_x, d.bbox.size_y,
                           d.results[0].hypothesis.score if d.results else -1.0, d.id,
                           stamp_ns(d.header)] for d in s.detections],
            })
        for s in debug_reader.take(N=100):
            debug_images.append({"stamp_ns": stamp_ns(s.header), "width": s.width, "height": s.height,
                                 "encoding": s.encoding, "step": s.step, "bytes": len(s.data)})
        if depth:
            for s in point_reader.take(N=1000):
                points.append({"stamp_ns": stamp_ns(s.header), "frame_id": s.header.frame_id,
                               "xyz": [s.point.x, s.point.y, s.point.z]})
            for s in det3d_reader.take(N=1000):
                detections_3d.append({
                    "stamp_ns": stamp_ns(s.header),
                    "boxes": [[d.results[0].pose.pose.position.x, d.results[0].pose.pose.position.y,
                               d.results[0].pose.pose.position.z, d.bbox.size.x, d.bbox.size.y, d.bbox.size.z,
                               d.results[0].hypothesis.score, d.id] for d in s.detections],
                })
        for s in diag_reader.take(N=100):
            for st in s.status:
                diagnostics.append({"name": st.name, "level": int(st.level), "message": st.message,
                                    "hardware_id": st.hardware_id,
                                    "values": {kv.key: kv.value for kv in st.values}})

    # The node is up and discovered once its 1 Hz diagnostics arrive.
    while not diagnostics and time.monotonic() < deadline:
        poll()
        time.sleep(0.05)
    if not diagnostics:
        print("wire_peer: no diagnostics from the node", file=sys.stderr)
    # Give the node's readers time to match our writers (discovery is symmetric but not atomic).
    time.sleep(1.0)

    width, height, aux_w, aux_h = 640, 480, 320, 240
    t0 = time.time_ns()
    period_ns = int(1e9 / args.rate_hz)
    rgb_stamps, aux_stamps, init_stamp = [], [], None
    for n in range(args.frames):
        if time.monotonic() > deadline:
            break
        rgb_ns = t0 + n * period_ns + rng.randint(-2_000_000, 2_000_000)
        aux_ns = rgb_ns + rng.randint(-8_000_000, 8_000_000)
        rgb = Image(header=Header(stamp=make_time(rgb_ns), frame_id="rgb_camera"), height=height, width=width,
                    encoding="rgb8", is_bigendian=0, step=width * 3, data=rgb_frame(width, height, n))
        if depth:
            aux = Image(header=Header(stamp=make_time(aux_ns), frame_id="depth_camera"), height=aux_h,
                        width=aux_w, encoding="16UC1", is_bigendian=0, step=aux_w * 2,
                        data=depth_frame(aux_w, aux_h, n))
            info_writer.write(CameraInfo(header=Header(stamp=make_time(rgb_ns), frame_id="rgb_camera"),
                                         height=height, width=width, distortion_model="plumb_bob",
                                         d=[0.0] * 5, k=[FX, 0.0, CX, 0.0, FY, CY, 0.0, 0.0, 1.0],
                                         r=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
                                         p=[FX, 0.0, CX, 0.0, 0.0, FY, CY, 0.0, 0.0, 0.0, 1.0, 0.0]))
        else:
            aux = Image(header=Header(stamp=make_time(aux_ns), frame_id="thermal_camera"), height=aux_h,
                        width=aux_w, encoding="mono16", is_bigendian=0, step=aux_w * 2,
                        data=thermal_frame(aux_w, aux_h, n))
        # Alternate the order, as two independent cameras would.
        if n % 2:
            aux_writer.write(aux)
            rgb_writer.write(rgb)
        else:
            rgb_writer.write(rgb)
            aux_writer.write(aux)
        rgb_stamps.append(rgb_ns)
        aux_stamps.append(aux_ns)
        if n == args.init_after:
            # The box of the square in frame init_after - 2, stamped with that frame.
            k = args.init_after - 2
            init_stamp = rgb_stamps[k]
            x0 = 200 + 2 * k
            init_writer.write(Detection2D(header=Header(stamp=make_time(init_stamp), frame_id="rgb_camera"),
                                          bbox=BoundingBox2D(center=Pose2D(position=Point2D(x=x0 + 40.0, y=220.0)),
                                                             size_x=80.0, size_y=80.0)))
        poll()
        time.sleep(max(0.0, t0 / 1e9 + (n + 1) / args.rate_hz - time.time()))

    # Let the node finish and report: wait for two diagnostics after the last frame.
    sent_done = time.monotonic()
    diag_at_end = len(diagnostics)
    while time.monotonic() < deadline and (len(diagnostics) < diag_at_end + 3 or time.monotonic() - sent_done < 3.0):
        poll()
        time.sleep(0.05)
    poll()

    report = {
        "rgb_stamps_ns": rgb_stamps,
        "aux_stamps_ns": aux_stamps,
        "init_stamp_ns": init_stamp,
        "detections": detections,
        "debug_images": debug_images,
        "diagnostics": diagnostics,
        "points": points,
        "detections_3d": detections_3d,
    }
    with open(args.report, "w") as f:
        json.dump(report, f)
    print(f"wire_peer: sent {len(rgb_stamps)} pairs, got {len(detections)} detection arrays, "
          f"{len(debug_images)} debug images, {len(diagnostics)} diagnostics, {len(points)} 3D points",
          file=sys.stderr)


if __name__ == "__main__":
    main()
