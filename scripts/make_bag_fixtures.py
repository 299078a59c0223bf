#!/usr/bin/env python3
"""tests/data/bags/sample_db3: the sample MCAP bag (tests/data/ros/sample_mcap, written by
scripts/make_fixtures.py) copied message for message into rosbag2 sqlite3 storage by PyPI
`rosbags`, as Humble's `ros2 bag record` stores bags by default. The replay tests check that
both storages give the same tracks.

    python3 -m venv .venv && .venv/bin/pip install rosbags==0.11.9
    .venv/bin/python scripts/make_bag_fixtures.py
"""
import shutil
from pathlib import Path

from rosbags.rosbag2 import Reader, StoragePlugin, Writer

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "tests" / "data" / "ros" / "sample_mcap"
DST = ROOT / "tests" / "data" / "bags" / "sample_db3"


def main():
    if DST.exists():
        shutil.rmtree(DST)
    DST.parent.mkdir(parents=True, exist_ok=True)
    with Reader(SRC) as reader, Writer(DST, version=8, storage_plugin=StoragePlugin.SQLITE3) as writer:
        conns = {}
        for c in reader.connections:
            conns[c.id] = writer.add_connection(c.topic, c.msgtype, typestore=None, msgdef=c.msgdef.data,
                                                rihs01=c.digest, serialization_format="cdr")
        n = 0
        for c, t, raw in reader.messages():
            writer.write(conns[c.id], t, raw)
            n += 1
    print(f"wrote {n} messages to {DST}")


if __name__ == "__main__":
    main()
