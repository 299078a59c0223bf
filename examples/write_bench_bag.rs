//! Writes a robot-like rosbag2 MCAP bag of any size for the replay memory benchmark
//! (`scripts/bench-replay-rss.sh`): 640x480 `rgb8` RGB, `mono16` thermal stamped 3 ms later and
//! an unrelated 640x480 `16UC1` depth camera, all at 30 Hz, in uncompressed chunks as
//! `ros2 bag record` writes by default. A bright, warm square moves over a textured background;
//! its first box is printed, for `patrack replay --init`.
//!
//!     cargo run --release --example write_bench_bag -- --pairs 900 --out out/bench_900

use std::path::PathBuf;

use clap::Parser;
use patrack::bag::{BagWriter, ChunkCompression, WriterOptions};
use patrack::ros::msgs::{Header, Image, RosMessage, Time};

#[derive(Parser)]
struct Args {
    /// Frames per camera (RGB/thermal pairs).
    #[arg(long)]
    pairs: usize,
    /// Output bag folder (must not exist).
    #[arg(long)]
    out: PathBuf,
    /// Leave out the unrelated depth camera.
    #[arg(long)]
    no_other_camera: bool,
}

const W: usize = 640;
const H: usize = 480;
const SIDE_PX: usize = 60;
const START_NS: i64 = 1_700_000_000_000_000_000;
const PERIOD_NS: i64 = 33_333_333;

/// Top-left corner of the square in frame `n`: a slow loop around the image centre.
fn square_at(n: usize) -> (usize, usize) {
    let t = n as f64 * 0.02;
    ((290.0 + 150.0 * t.cos()) as usize, (210.0 + 100.0 * (1.3 * t).sin()) as usize)
}

fn image(stamp_ns: i64, frame_id: &str, encoding: &str, bytes_per_px: usize, data: Vec<u8>) -> Image {
    Image {
        header: Header { stamp: Time::from_ns(stamp_ns).expect("stamp in range"), frame_id: frame_id.into() },
        height: H as u32,
        width: W as u32,
        encoding: encoding.into(),
        is_bigendian: 0,
        step: (W * bytes_per_px) as u32,
        data,
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut bag = BagWriter::create_with(
        &args.out,
        &WriterOptions { compression: ChunkCompression::None, ..Default::default() },
    )?;
    let (rgb_topic, aux_topic, other_topic) =
        ("/camera/rgb/image_raw", "/thermal/image_raw", "/camera/depth/image_raw");
    bag.add_topic(rgb_topic, Image::TYPE_NAME)?;
    bag.add_topic(aux_topic, Image::TYPE_NAME)?;
    if !args.no_other_camera {
        bag.add_topic(other_topic, Image::TYPE_NAME)?;
    }
    // A texture twice as wide as the image, scrolled one pixel per frame.
    let texture: Vec<u8> = (0..H * 2 * W).map(|i| ((i % (2 * W)) * 7 + (i / (2 * W)) * 13) as u8 % 97).collect();
    let mut buf = Vec::new();
    for n in 0..args.pairs {
        let stamp = START_NS + n as i64 * PERIOD_NS;
        let (sx, sy) = square_at(n);
        let inside = |x: usize, y: usize| (sx..sx + SIDE_PX).contains(&x) && (sy..sy + SIDE_PX).contains(&y);
        let mut rgb = Vec::with_capacity(W * H * 3);
        let mut thermal = Vec::with_capacity(W * H * 2);
        for y in 0..H {
            let row = &texture[y * 2 * W + n % W..][..W];
            for (x, v) in row.iter().enumerate() {
                let (rgb_px, heat) =
                    if inside(x, y) { ([230, 40, 30], 30_000u16) } else { ([*v, v / 2, 60], 3000 + *v as u16) };
                rgb.extend_from_slice(&rgb_px);
                thermal.extend_from_slice(&heat.to_le_bytes());
            }
        }
        image(stamp, "camera_color_optical_frame", "rgb8", 3, rgb).encode_into(&mut buf)?;
        bag.write(rgb_topic, stamp as u64, &buf)?;
        let aux_stamp = stamp + 3_000_000;
        image(aux_stamp, "thermal_optical_frame", "mono16", 2, thermal).encode_into(&mut buf)?;
        bag.write(aux_topic, aux_stamp as u64, &buf)?;
        if !args.no_other_camera {
            let depth: Vec<u8> = (0..W * H).flat_map(|i| ((1000 + (i + n) % 3000) as u16).to_le_bytes()).collect();
            image(stamp + 5_000_000, "camera_depth_optical_frame", "16UC1", 2, depth).encode_into(&mut buf)?;
            bag.write(other_topic, (stamp + 5_000_000) as u64, &buf)?;
        }
    }
    let dir = bag.finish()?;
    let (x, y) = square_at(0);
    println!("bag {} pairs {} init {x},{y},{SIDE_PX},{SIDE_PX}", dir.display(), args.pairs);
    Ok(())
}
