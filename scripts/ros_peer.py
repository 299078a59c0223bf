#!/usr/bin/env python3
"""An rclpy peer for scripts/ros-check.sh: publishes RGB + aux image pairs (a bright square
moving right) to the node's camera topics, sends an init box, and counts what comes back.

Needs a sourced ROS 2 with rclpy, sensor_msgs, std_msgs, vision_msgs and diagnostic_msgs.
Prints one JSON line: pairs sent, detection arrays received (with and without a box), debug
images, diagnostics levels, confidence_stamped messages, and whether the answers carry the
RGB stamps that were sent.

With --depth the aux stream is 16UC1 depth in millimetres (the square at 1.5 m before a wall at
3 m) and a CameraInfo goes with each RGB frame; the peer then also counts ~/target_point,
~/detections_3d and ~/markers and reports the depths (z) of the points it received.

With --two a second square moves left below the first; the peer sends two inits with ids "a" and
"b" (for a node with max_targets >= 2), publishes "a" on ~/reset_target two thirds of the way
through, and reports the ids of the detections before and after that reset.
"""

import argparse
import json
import time

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy, HistoryPolicy
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import String
from vision_msgs.msg import Classification, Detection2D, Detection2DArray

W, H = 160, 120
# The depth scene: the square at SQUARE_MM before a wall at WALL_MM; a pinhole camera of focal F_PX.
SQUARE_MM, WALL_MM, F_PX = 1500, 3000, 180.0


def camera_info(stamp):
    msg = CameraInfo()
    msg.header.stamp = stamp
    msg.header.frame_id = "camera"
    msg.height, msg.width = H, W
    msg.distortion_model = "plumb_bob"
    msg.d = [0.0] * 5
    msg.k = [F_PX, 0.0, W / 2, 0.0, F_PX, H / 2, 0.0, 0.0, 1.0]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [F_PX, 0.0, W / 2, 0.0, 0.0, F_PX, H / 2, 0.0, 0.0, 0.0, 1.0, 0.0]
    return msg


def second_square(n):
    """The second square's box (x, y, w, h) in frame n (--two)."""
    return (110 - 2 * n, 80, 25, 25)


def frame(n, stamp, encoding, two=False):
    msg = Image()
    msg.header.stamp = stamp
    msg.header.frame_id = "camera"
    msg.height, msg.width = H, W
    x0 = 40 + 2 * n
    bx, by, bw, bh = second_square(n)

    def inside(x, y):
        return (x0 <= x < x0 + 30 and 40 <= y < 70) or (two and bx <= x < bx + bw and by <= y < by + bh)
    if encoding == "rgb8":
        msg.encoding, msg.step = "rgb8", W * 3
        row = bytearray()
        data = bytearray()
        for y in range(H):
            row = bytearray()
            for x in range(W):
                v = 230 if inside(x, y) else (x * 7 + y * 3) % 64
                row += bytes((v, v // 2, 30))
            data += row
        msg.data = bytes(data)
    elif encoding == "16UC1":
        msg.encoding, msg.step = "16UC1", W * 2
        data = bytearray()
        for y in range(H):
            for x in range(W):
                v = SQUARE_MM if (x0 <= x < x0 + 30 and 40 <= y < 70) else WALL_MM
                data += v.to_bytes(2, "little")
        msg.data = bytes(data)
    else:
        msg.encoding, msg.step = "mono16", W * 2
        data = bytearray()
        for y in range(H):
            for x in range(W):
                v = 4000 if inside(x, y) else 3000 + (x + y) % 97
                data += v.to_bytes(2, "little")
        msg.data = bytes(data)
    return msg


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ns", default="", help="namespace of the node's topics")
    ap.add_argument("--node", default="/patrack", help="the node's full name")
    ap.add_argument("--pairs", type=int, default=30)
    ap.add_argument("--rate-hz", type=float, default=10.0)
    ap.add_argument("--reliable", action="store_true", help="publish the cameras reliable")
    ap.add_argument("--depth", action="store_true", help="16UC1 depth + CameraInfo; count the 3D outputs")
    ap.add_argument("--two", action="store_true", help="two squares, inits with ids a and b, then reset a")
    args = ap.parse_args()

    rclpy.init()
    node = Node("patrack_check_peer")
    camera_qos = QoSProfile(
        depth=5,
        history=HistoryPolicy.KEEP_LAST,
        reliability=ReliabilityPolicy.RELIABLE if args.reliable else ReliabilityPolicy.BEST_EFFORT,
    )
    rgb_pub = node.create_publisher(Image, f"{args.ns}/rgb/image", camera_qos)
    aux_pub = node.create_publisher(Image, f"{args.ns}/aux/image", camera_qos)
    init_pub = node.create_publisher(Detection2D, f"{args.node}/init", 10)
    info_pub = node.create_publisher(CameraInfo, f"{args.ns}/rgb/camera_info", camera_qos) if args.depth else None
    reset_target_pub = node.create_publisher(String, f"{args.node}/reset_target", 10)
    got = {"detections": 0, "with_box": 0, "debug": 0, "scores": 0, "diag_levels": [], "stamps": [],
           "points_z": [], "detections_3d": 0, "markers": 0, "ids": []}
    sent = []

    def on_det(msg):
        got["detections"] += 1
        got["with_box"] += len(msg.detections) > 0
        got["stamps"].append(msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec)
        got["ids"].append((got["stamps"][-1], sorted(d.id for d in msg.detections)))

    node.create_subscription(Detection2DArray, f"{args.node}/detections", on_det, 50)
    node.create_subscription(Image, f"{args.node}/debug_image", lambda m: got.__setitem__("debug", got["debug"] + 1), 10)
    node.create_subscription(Classification, f"{args.node}/confidence_stamped",
                             lambda m: got.__setitem__("scores", got["scores"] + 1), 50)
    node.create_subscription(DiagnosticArray, "/diagnostics",
                             lambda m: got["diag_levels"].append(int.from_bytes(m.status[0].level, "little")
                                                                 if isinstance(m.status[0].level, bytes)
                                                                 else int(m.status[0].level)), 10)

    if args.depth:
        from geometry_msgs.msg import PointStamped
        from vision_msgs.msg import Detection3DArray
        from visualization_msgs.msg import MarkerArray

        node.create_subscription(PointStamped, f"{args.node}/target_point",
                                 lambda m: got["points_z"].append(m.point.z), 50)
        node.create_subscription(Detection3DArray, f"{args.node}/detections_3d",
                                 lambda m: got.__setitem__("detections_3d", got["detections_3d"] + 1), 50)
        node.create_subscription(MarkerArray, f"{args.node}/markers",
                                 lambda m: got.__setitem__("markers", got["markers"] + 1), 50)

    # Wait until the node's camera subscriptions are matched.
    pubs = [rgb_pub, aux_pub] + ([info_pub] if info_pub else [])
    deadline = time.time() + 30
    while time.time() < deadline and any(p.get_subscription_count() == 0 for p in pubs):
        rclpy.spin_once(node, timeout_sec=0.1)
    period = 1.0 / args.rate_hz
    t0 = node.get_clock().now().nanoseconds
    reset_at = args.pairs * 2 // 3
    reset_stamp_ns = None
    for n in range(args.pairs):
        stamp_ns = t0 + int(n * 33_333_333)
        stamp = rclpy.time.Time(nanoseconds=stamp_ns).to_msg()
        if n == 1:
            boxes = [("a", (40, 40, 30, 30))] + ([("b", second_square(0))] if args.two else [])
            for target, (x, y, w, h) in boxes:
                init = Detection2D()
                init.header.stamp = rclpy.time.Time(nanoseconds=t0).to_msg()
                init.bbox.center.position.x, init.bbox.center.position.y = x + w / 2, y + h / 2
                init.bbox.size_x, init.bbox.size_y = float(w), float(h)
                init.id = target if args.two else ""
                init_pub.publish(init)
        if args.two and n == reset_at:
            reset_target_pub.publish(String(data="a"))
            reset_stamp_ns = stamp_ns
        if info_pub:
            info_pub.publish(camera_info(stamp))
        rgb_pub.publish(frame(n, stamp, "rgb8", args.two))
        aux_pub.publish(frame(n, stamp, "16UC1" if args.depth else "mono16", args.two))
        sent.append(stamp_ns)
        end = time.time() + period
        while time.time() < end:
            rclpy.spin_once(node, timeout_sec=0.01)
    end = time.time() + 3
    while time.time() < end:
        rclpy.spin_once(node, timeout_sec=0.05)
    report = {
        "sent": len(sent),
        "detections": got["detections"],
        "with_box": got["with_box"],
        "debug_images": got["debug"],
        "confidence_stamped": got["scores"],
        "diagnostics": len(got["diag_levels"]),
        "diag_levels": sorted(set(got["diag_levels"])),
        "stamps_match": all(s in sent for s in got["stamps"]),
    }
    if args.two:
        # Pairs a frame or two after the reset may have been answered before it arrived.
        settled = reset_stamp_ns + 2 * 33_333_333
        report.update(both_before_reset=sum(ids == ["a", "b"] for s, ids in got["ids"] if s < reset_stamp_ns),
                      only_b_after_reset=sum(ids == ["b"] for s, ids in got["ids"] if s > settled),
                      with_a_after_reset=sum("a" in ids for s, ids in got["ids"] if s > settled),
                      ids_seen=sorted({i for _, ids in got["ids"] for i in ids}))
    if args.depth:
        at_square = sum(abs(z - SQUARE_MM / 1000) < 0.03 * SQUARE_MM / 1000 for z in got["points_z"])
        report.update(points=len(got["points_z"]), points_at_square=at_square,
                      points_z=sorted({round(z, 3) for z in got["points_z"]}),
                      detections_3d=got["detections_3d"], markers=got["markers"])
    print(json.dumps(report))
    node.destroy_node()
    rclpy.shutdown()


if __name__ == "__main__":
    main()
