#!/usr/bin/env python3
"""Reads a rosbag2 bag with PyPI `rosbags` (0.11.9, in the test venv) and prints, as JSON, one
entry per message: topic, type, log time, header stamp and frame, and for sensor_msgs/Image the
encoding, size, step and the sha256 of the pixel bytes; for vision_msgs/Detection2DArray the
boxes as [x, y, w, h]. tests/bag_convert.rs compares this with the source image files.

    .venv/bin/python tests/data/bags/read_with_rosbags.py BAG_FOLDER
"""
import hashlib
import json
import sys
from pathlib import Path

from rosbags.highlevel import AnyReader
from rosbags.typesys import Stores, get_typestore


def main():
    out = []
    typestore = get_typestore(Stores.ROS2_JAZZY)
    with AnyReader([Path(sys.argv[1])], default_typestore=typestore) as reader:
        for conn, log_time, raw in reader.messages():
            msg = reader.deserialize(raw, conn.msgtype)
            entry = {
                "topic": conn.topic,
                "msgtype": conn.msgtype,
                "log_time_ns": log_time,
                "stamp_ns": msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec,
                "frame_id": msg.header.frame_id,
            }
            if conn.msgtype == "sensor_msgs/msg/Image":
                entry.update(encoding=msg.encoding, width=msg.width, height=msg.height, step=msg.step,
                             is_bigendian=msg.is_bigendian,
                             sha256=hashlib.sha256(bytes(msg.data)).hexdigest())
            elif conn.msgtype == "vision_msgs/msg/Detection2DArray":
                entry["boxes"] = [[d.bbox.center.position.x - d.bbox.size_x / 2,
                                   d.bbox.center.position.y - d.bbox.size_y / 2,
                                   d.bbox.size_x, d.bbox.size_y] for d in msg.detections]
            out.append(entry)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
