/// An 8-bit image in row-major HWC layout (no row padding): `data[(y * width + x) * channels + c]`.
///
/// RGB frames have 3 channels in R, G, B order; the tracker's joint frame has 6 channels
/// `[R, G, B, a0, a1, a2]` (RGB followed by the prepared auxiliary image).
#[derive(Clone, PartialEq, Eq)]
pub struct ImageU8 {
    pub width: usize,
    pub height: usize,
    pub channels: usize,
    pub data: Vec<u8>,
}

impl ImageU8 {
    /// A black image.
    pub fn zeros(width: usize, height: usize, channels: usize) -> Self {
        Self { width, height, channels, data: vec![0; width * height * channels] }
    }

    /// Wraps existing pixels; `None` when `data.len() != width * height * channels`.
    pub fn from_vec(width: usize, height: usize, channels: usize, data: Vec<u8>) -> Option<Self> {
        (width.checked_mul(height)?.checked_mul(channels)? == data.len()).then_some(Self {
            width,
            height,
            channels,
            data,
        })
    }

    /// The pixel at (x, y) as a slice of `channels` values.
    pub fn pixel(&self, x: usize, y: usize) -> &[u8] {
        let i = (y * self.width + x) * self.channels;
        &self.data[i..i + self.channels]
    }

    /// Whether `data` holds exactly `width * height * channels` bytes and `channels > 0`: the
    /// fields are public, so functions taking images from outside check this before indexing.
    pub fn is_consistent(&self) -> bool {
        self.channels > 0
            && self.width.checked_mul(self.height).and_then(|n| n.checked_mul(self.channels)) == Some(self.data.len())
    }

    /// Stacks two images of the same size channel-wise (`[a..., b...]` per pixel).
    pub fn concat_channels(a: &ImageU8, b: &ImageU8) -> Option<ImageU8> {
        if a.width != b.width || a.height != b.height || !a.is_consistent() || !b.is_consistent() {
            return None;
        }
        let channels = a.channels + b.channels;
        let mut data = vec![0u8; a.width * a.height * channels];
        if (a.channels, b.channels) == (3, 3) {
            // The tracker's RGB + aux frame: fixed-size copies the compiler unrolls (a generic
            // slice copy per pixel is a memcpy call each, several times slower at 640x480).
            for ((o, pa), pb) in data.chunks_exact_mut(6).zip(a.data.chunks_exact(3)).zip(b.data.chunks_exact(3)) {
                o.copy_from_slice(&[pa[0], pa[1], pa[2], pb[0], pb[1], pb[2]]);
            }
        } else {
            for ((o, pa), pb) in data
                .chunks_exact_mut(channels)
                .zip(a.data.chunks_exact(a.channels))
                .zip(b.data.chunks_exact(b.channels))
            {
                o[..a.channels].copy_from_slice(pa);
                o[a.channels..].copy_from_slice(pb);
            }
        }
        Some(ImageU8 { width: a.width, height: a.height, channels, data })
    }
}

impl std::fmt::Debug for ImageU8 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ImageU8({}x{}x{})", self.width, self.height, self.channels)
    }
}
