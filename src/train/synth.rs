//! Synthetic RGB+X tracking sequences in which the second modality matters.
//!
//! A scene is a static textured background, one target and look-alike distractors moving on smooth
//! bouncing paths with scale changes, and sometimes an occluding bar. Every scene is rendered in
//! RGB and in one auxiliary modality:
//!
//! * thermal: the target is warm (bright), distractors and background are cool;
//! * depth (16-bit millimetres, as a depth camera gives them): the target stands at its own
//!   distance in front of a receding background, distractors further back;
//! * event: thresholded temporal differences of the scene's brightness (what an event camera
//!   accumulates per frame); distractors stand still, so only moving things fire.
//!
//! RGB-hard conditions make the RGB image useless while the aux image still shows the target:
//! `dark` (RGB at a few percent of its brightness under sensor noise), `lowcontrast` (the target's
//! colours are the background's), `camouflage` (the target wears the background's texture).
//!
//! Everything is a pure function of the seed: same seed, same pixels, on every machine.
//!
//! **Known geometry (RGB-D).** [`Scene::with_known_geometry`] makes an RGB-D scene whose target's
//! 3D position is known at every frame: the pinhole camera of [`Scene::intrinsics`] (both images
//! share it, as a registered RGB-D camera does), the target a fronto-parallel plane at a distance
//! that changes over time ([`Scene::target_depth_m`]) instead of a dome, no occluding bar.
//! [`Scene::target_position_m`] is the ground-truth box centre back-projected to that plane.
//! Sensor noise (15 mm) and about 1 % of holes stay, and the target's ellipse or box leaves
//! background pixels inside its box.

use std::path::Path;

use crate::sensor::camera::{box_to_pixel, PinholeIntrinsics};
use crate::sensor::{DecodedImage, ImageU16, ImageU8, Modality};
use crate::tracker::BoxXywh;

/// SplitMix64: small, fast, and reproducible across platforms.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    /// The generator's state, to save with a training checkpoint.
    pub fn state(&self) -> u64 {
        self.0
    }

    /// A generator continuing from a saved [`state`](Self::state).
    pub fn from_state(state: u64) -> Self {
        Self(state)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.0)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// Uniform integer in [0, n).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.uniform() * n as f64) as usize).min(n.saturating_sub(1))
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-12);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Stateless per-pixel noise in [-1, 1).
fn hash_noise(seed: u64, a: u64, b: u64) -> f32 {
    let h = mix64(seed ^ mix64(a.wrapping_mul(0x9E37_79B9) ^ mix64(b)));
    ((h >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
}

/// What the RGB camera sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Condition {
    Normal,
    Dark,
    LowContrast,
    Camouflage,
}

impl Condition {
    pub const ALL: [Condition; 4] = [Condition::Normal, Condition::Dark, Condition::LowContrast, Condition::Camouflage];

    pub fn name(self) -> &'static str {
        match self {
            Condition::Normal => "normal",
            Condition::Dark => "dark",
            Condition::LowContrast => "lowcontrast",
            Condition::Camouflage => "camouflage",
        }
    }

    /// Conditions in which RGB alone cannot follow the target.
    pub fn is_rgb_hard(self) -> bool {
        self != Condition::Normal
    }
}

/// Frame size of every synthetic scene.
pub const WIDTH: usize = 256;
pub const HEIGHT: usize = 192;
/// Focal length of the synthetic camera of [`Scene::intrinsics`], pixels (a 70 degree
/// horizontal field of view over [`WIDTH`]).
pub const FOCAL_PX: f64 = 182.0;

/// A moving object: path, size, texture and what the aux sensors see of it.
#[derive(Debug, Clone)]
struct Object {
    ellipse: bool,
    w: f64,
    h: f64,
    x0: f64,
    y0: f64,
    vx: f64,
    vy: f64,
    amp: [f64; 2],
    freq: [f64; 2],
    phase: [f64; 3],
    scale_amp: f64,
    scale_freq: f64,
    colours: [[f32; 3]; 2],
    stripe: [f32; 3], // direction (cos, sin) and spatial frequency
    heat: f32,
    depth_mm: f32,
    /// Camouflage: texture taken from the background at this offset.
    camo_offset: Option<(i64, i64)>,
}

fn fold(p: f64, lo: f64, hi: f64) -> f64 {
    let span = (hi - lo).max(1.0);
    let m = (p - lo).rem_euclid(2.0 * span);
    lo + if m > span { 2.0 * span - m } else { m }
}

impl Object {
    fn random(rng: &mut Rng, moving: bool) -> Self {
        let w = rng.range(16.0, 44.0);
        let aspect = rng.range(0.6, 1.6);
        let speed = if moving { rng.range(1.0, 3.2) } else { 0.0 };
        let dir = rng.range(0.0, std::f64::consts::TAU);
        let colour = |rng: &mut Rng| {
            [rng.range(20.0, 235.0) as f32, rng.range(20.0, 235.0) as f32, rng.range(20.0, 235.0) as f32]
        };
        let angle = rng.range(0.0, std::f64::consts::PI) as f32;
        Self {
            ellipse: rng.uniform() < 0.5,
            w,
            h: (w * aspect).clamp(12.0, 56.0),
            x0: rng.range(10.0, WIDTH as f64 - 60.0),
            y0: rng.range(10.0, HEIGHT as f64 - 60.0),
            vx: speed * dir.cos(),
            vy: speed * dir.sin(),
            amp: if moving { [rng.range(0.0, 25.0), rng.range(0.0, 25.0)] } else { [0.0; 2] },
            freq: [rng.range(0.03, 0.12), rng.range(0.03, 0.12)],
            phase: [rng.range(0.0, 6.3), rng.range(0.0, 6.3), rng.range(0.0, 6.3)],
            scale_amp: if moving { rng.range(0.0, 0.25) } else { 0.0 },
            scale_freq: rng.range(0.02, 0.08),
            colours: [colour(rng), colour(rng)],
            stripe: [angle.cos(), angle.sin(), rng.range(0.3, 0.9) as f32],
            heat: rng.range(175.0, 235.0) as f32,
            depth_mm: rng.range(1200.0, 2500.0) as f32,
            camo_offset: None,
        }
    }

    /// A look-alike of `target`: same shape and texture, slightly shifted colours, own path.
    fn look_alike(target: &Object, rng: &mut Rng, moving: bool) -> Self {
        let mut o = Object::random(rng, moving);
        o.ellipse = target.ellipse;
        o.w = target.w * rng.range(0.85, 1.15);
        o.h = target.h * rng.range(0.85, 1.15);
        o.stripe = target.stripe;
        o.colours = target.colours.map(|c| c.map(|v| (v + rng.range(-15.0, 15.0) as f32).clamp(0.0, 255.0)));
        o.heat = rng.range(95.0, 130.0) as f32;
        o.depth_mm = rng.range(3000.0, 4200.0) as f32;
        o
    }

    fn bbox(&self, t: f64) -> BoxXywh {
        let s = 1.0 + self.scale_amp * (self.scale_freq * t + self.phase[2]).sin();
        let (w, h) = (self.w * s, self.h * s);
        let x = self.x0 + self.vx * t + self.amp[0] * (self.freq[0] * t + self.phase[0]).sin();
        let y = self.y0 + self.vy * t + self.amp[1] * (self.freq[1] * t + self.phase[1]).sin();
        BoxXywh::new(fold(x, 2.0, WIDTH as f64 - w - 2.0), fold(y, 2.0, HEIGHT as f64 - h - 2.0), w, h)
    }

    /// Pixels covered at time `t`, with their position inside the object normalised to [-1, 1].
    fn for_each_pixel(&self, t: f64, mut f: impl FnMut(usize, usize, f32, f32)) {
        let b = self.bbox(t);
        let (x0, y0) = (b.x.floor().max(0.0) as usize, b.y.floor().max(0.0) as usize);
        let (x1, y1) = (((b.x + b.w).ceil() as usize).min(WIDTH), ((b.y + b.h).ceil() as usize).min(HEIGHT));
        let (cx, cy) = b.center();
        for y in y0..y1 {
            for x in x0..x1 {
                let u = ((x as f64 + 0.5 - cx) / (0.5 * b.w)) as f32;
                let v = ((y as f64 + 0.5 - cy) / (0.5 * b.h)) as f32;
                if (self.ellipse && u * u + v * v <= 1.0) || (!self.ellipse && u.abs() <= 1.0 && v.abs() <= 1.0) {
                    f(x, y, u, v);
                }
            }
        }
    }

    /// The stripe pattern in [0, 1] at object coordinates (u, v), scaled with the object.
    fn stripe_at(&self, u: f32, v: f32) -> f32 {
        let along = (u * self.stripe[0] + v * self.stripe[1]) * self.w as f32 * 0.5;
        0.5 + 0.5 * (along * self.stripe[2]).sin()
    }
}

/// A vertical bar crossing the frame in front of everything.
#[derive(Debug, Clone)]
struct Occluder {
    x0: f64,
    speed: f64,
    width: f64,
    colour: [f32; 3],
}

impl Occluder {
    fn span(&self, t: f64) -> (usize, usize) {
        let x = fold(self.x0 + self.speed * t, -self.width, WIDTH as f64);
        (x.max(0.0) as usize, ((x + self.width).max(0.0) as usize).min(WIDTH))
    }
}

/// One synthetic scene; frames are rendered on demand for any time step.
#[derive(Debug, Clone)]
pub struct Scene {
    pub modality: Modality,
    pub condition: Condition,
    seed: u64,
    bg_rgb: Vec<f32>,
    bg_heat: Vec<f32>,
    bg_depth: Vec<f32>,
    target: Object,
    distractors: Vec<Object>,
    occluder: Option<Occluder>,
    /// [`Scene::with_known_geometry`]: the target is a plane at [`Scene::target_depth_m`].
    flat_target: bool,
}

/// Smooth random field: a base value plus Gaussian blobs, then value noise at `cell` pixels.
fn field(
    rng: &mut Rng,
    channels: usize,
    base: &[f32],
    blob_amp: f32,
    blobs: usize,
    texture_amp: f32,
    cell: usize,
) -> Vec<f32> {
    let mut out = vec![0f32; WIDTH * HEIGHT * channels];
    for px in out.chunks_exact_mut(channels) {
        px.copy_from_slice(&base[..channels]);
    }
    for _ in 0..blobs {
        let (bx, by) = (rng.range(0.0, WIDTH as f64) as f32, rng.range(0.0, HEIGHT as f64) as f32);
        let r = rng.range(12.0, 70.0) as f32;
        let amp: Vec<f32> = (0..channels).map(|_| rng.range(-1.0, 1.0) as f32 * blob_amp).collect();
        let inv = 1.0 / (2.0 * r * r);
        let (ylo, yhi) = ((by - 3.0 * r).max(0.0) as usize, ((by + 3.0 * r) as usize).min(HEIGHT));
        let (xlo, xhi) = ((bx - 3.0 * r).max(0.0) as usize, ((bx + 3.0 * r) as usize).min(WIDTH));
        for y in ylo..yhi {
            for x in xlo..xhi {
                let d2 = (x as f32 - bx).powi(2) + (y as f32 - by).powi(2);
                let g = (-d2 * inv).exp();
                let px = &mut out[(y * WIDTH + x) * channels..][..channels];
                for (p, a) in px.iter_mut().zip(&amp) {
                    *p += a * g;
                }
            }
        }
    }
    // Value noise: random values on a lattice of `cell` pixels, bilinearly interpolated.
    let seed = rng.next_u64();
    let (gw, gh) = (WIDTH / cell + 2, HEIGHT / cell + 2);
    let lattice: Vec<f32> = (0..gw * gh * channels).map(|i| hash_noise(seed, i as u64, 7) * texture_amp).collect();
    for y in 0..HEIGHT {
        let fy = y as f32 / cell as f32;
        let (gy, ty) = (fy as usize, fy.fract());
        for x in 0..WIDTH {
            let fx = x as f32 / cell as f32;
            let (gx, tx) = (fx as usize, fx.fract());
            for c in 0..channels {
                let at = |gx: usize, gy: usize| lattice[(gy * gw + gx) * channels + c];
                let top = at(gx, gy) * (1.0 - tx) + at(gx + 1, gy) * tx;
                let bottom = at(gx, gy + 1) * (1.0 - tx) + at(gx + 1, gy + 1) * tx;
                out[(y * WIDTH + x) * channels + c] += top * (1.0 - ty) + bottom * ty;
            }
        }
    }
    out
}

/// A rendered frame pair and the target's box.
#[derive(Debug, Clone)]
pub struct SynthFrame {
    pub rgb: ImageU8,
    /// As the aux camera delivers it: 8-bit grey (thermal, event) or 16-bit millimetres (depth).
    pub aux: DecodedImage,
    pub bbox: BoxXywh,
}

impl Scene {
    pub fn new(seed: u64, modality: Modality, condition: Condition) -> Self {
        let mut rng = Rng::new(seed);
        let base = [rng.range(40.0, 200.0) as f32, rng.range(40.0, 200.0) as f32, rng.range(40.0, 200.0) as f32];
        let cell = 3 + rng.below(6);
        let bg_rgb = field(&mut rng, 3, &base, 70.0, 10, 45.0, cell);
        let heat_base = rng.range(55.0, 95.0) as f32;
        let bg_heat = field(&mut rng, 1, &[heat_base], 25.0, 6, 6.0, 12);
        let mut bg_depth = field(&mut rng, 1, &[0.0], 400.0, 5, 30.0, 16);
        let far = rng.range(5000.0, 7000.0) as f32;
        for (i, d) in bg_depth.iter_mut().enumerate() {
            // A floor receding towards the top of the image.
            let y = (i / WIDTH) as f32 / HEIGHT as f32;
            *d += far - 2200.0 * y;
        }
        let mut target = Object::random(&mut rng, true);
        if condition == Condition::Camouflage {
            target.camo_offset = Some((rng.range(-40.0, 40.0) as i64, rng.range(-40.0, 40.0) as i64));
        }
        // Event cameras see only motion: there the look-alikes stand still.
        let distractors_move = modality != Modality::Event;
        let n_distractors = rng.below(4);
        let distractors = (0..n_distractors).map(|_| Object::look_alike(&target, &mut rng, distractors_move)).collect();
        let occluder = (rng.uniform() < 0.35).then(|| Occluder {
            x0: rng.range(0.0, WIDTH as f64),
            speed: rng.range(1.5, 4.0) * if rng.uniform() < 0.5 { -1.0 } else { 1.0 },
            width: rng.range(10.0, 24.0),
            colour: [rng.range(60.0, 200.0) as f32; 3],
        });
        Self { modality, condition, seed, bg_rgb, bg_heat, bg_depth, target, distractors, occluder, flat_target: false }
    }

    /// An RGB-D scene with known geometry (see the module docs): the scene of `seed` with its
    /// target flattened to a fronto-parallel plane and without the occluding bar.
    pub fn with_known_geometry(seed: u64, condition: Condition) -> Self {
        let mut scene = Self::new(seed, Modality::Depth, condition);
        scene.occluder = None;
        scene.flat_target = true;
        scene
    }

    /// The camera both images are rendered with in a scene of known geometry: focal length
    /// [`FOCAL_PX`], principal point at the image centre (pixel-centre convention, as in
    /// `CameraInfo`).
    pub fn intrinsics() -> PinholeIntrinsics {
        let k = [FOCAL_PX, 0.0, (WIDTH as f64 - 1.0) / 2.0, 0.0, FOCAL_PX, (HEIGHT as f64 - 1.0) / 2.0, 0.0, 0.0, 1.0];
        PinholeIntrinsics::from_k(&k, WIDTH as u32, HEIGHT as u32).expect("constant intrinsics are valid")
    }

    /// Distance of the target's plane from the camera at frame `t` (scenes of known geometry),
    /// metres: its own distance, swinging by 15 % over about 90 frames. Always nearer than the
    /// distractors (3 m and more).
    pub fn target_depth_m(&self, t: usize) -> f64 {
        let swing = 1.0 + 0.15 * (0.07 * t as f64 + self.target.phase[0]).sin();
        f64::from(self.target.depth_mm) * swing / 1000.0
    }

    /// The target's centre on its plane in the optical frame of [`Scene::intrinsics`] (x right,
    /// y down, z forward), metres, at frame `t` (scenes of known geometry).
    pub fn target_position_m(&self, t: usize) -> [f64; 3] {
        let (cx, cy) = self.bbox(t).center();
        let k = Self::intrinsics();
        let z = self.target_depth_m(t);
        [(box_to_pixel(cx) - k.cx_px) * z / k.fx_px, (box_to_pixel(cy) - k.cy_px) * z / k.fy_px, z]
    }

    /// The target's ground-truth box at frame `t`.
    pub fn bbox(&self, t: usize) -> BoxXywh {
        self.target.bbox(t as f64)
    }

    /// Mean background colour under the target's box (what low-contrast targets are painted in).
    fn local_mean(&self, b: &BoxXywh) -> [f32; 3] {
        let mut sum = [0f64; 3];
        let mut n = 0f64;
        let (x0, y0) = (b.x.max(0.0) as usize, b.y.max(0.0) as usize);
        for y in y0..((b.y + b.h) as usize).min(HEIGHT) {
            for x in x0..((b.x + b.w) as usize).min(WIDTH) {
                for (c, s) in sum.iter_mut().enumerate() {
                    *s += self.bg_rgb[(y * WIDTH + x) * 3 + c] as f64;
                }
                n += 1.0;
            }
        }
        sum.map(|s| (s / n.max(1.0)) as f32)
    }

    /// Distractors and target, far to near (painter's order).
    fn objects_far_to_near(&self) -> Vec<&Object> {
        let mut objs: Vec<&Object> = self.distractors.iter().chain(std::iter::once(&self.target)).collect();
        objs.sort_by(|a, b| b.depth_mm.total_cmp(&a.depth_mm));
        objs
    }

    /// The fully lit scene colour at `t`, before the camera's condition and noise.
    fn scene_rgb(&self, t: usize) -> Vec<f32> {
        let tf = t as f64;
        let mut img = self.bg_rgb.clone();
        for obj in self.objects_far_to_near() {
            let is_target = std::ptr::eq(obj, &self.target);
            let low = (is_target && self.condition == Condition::LowContrast).then(|| self.local_mean(&obj.bbox(tf)));
            obj.for_each_pixel(tf, |x, y, u, v| {
                let i = (y * WIDTH + x) * 3;
                let s = obj.stripe_at(u, v);
                let px: [f32; 3] = if let (true, Some((dx, dy))) = (is_target, obj.camo_offset) {
                    let sx = (x as i64 + dx).clamp(0, WIDTH as i64 - 1) as usize;
                    let sy = (y as i64 + dy).clamp(0, HEIGHT as i64 - 1) as usize;
                    let j = (sy * WIDTH + sx) * 3;
                    [self.bg_rgb[j], self.bg_rgb[j + 1], self.bg_rgb[j + 2]]
                } else if let Some(m) = low {
                    m.map(|c| c + (s - 0.5) * 10.0)
                } else {
                    std::array::from_fn(|c| obj.colours[0][c] * s + obj.colours[1][c] * (1.0 - s))
                };
                img[i..i + 3].copy_from_slice(&px);
            });
        }
        if let Some(occ) = &self.occluder {
            let (x0, x1) = occ.span(tf);
            for y in 0..HEIGHT {
                for x in x0..x1 {
                    let shade = 0.85 + 0.15 * ((y / 6 + x / 6) % 2) as f32;
                    img[(y * WIDTH + x) * 3..][..3].copy_from_slice(&occ.colour.map(|c| c * shade));
                }
            }
        }
        img
    }

    /// Frame `t` as the two cameras deliver it.
    pub fn render(&self, t: usize) -> SynthFrame {
        let scene = self.scene_rgb(t);
        let (gain, noise) = match self.condition {
            Condition::Dark => (0.06, 2.5),
            _ => (1.0, 3.0),
        };
        let rgb_seed = self.seed ^ 0xA5A5;
        let rgb: Vec<u8> = scene
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                (v * gain + noise * hash_noise(rgb_seed, t as u64, i as u64)).round().clamp(0.0, 255.0) as u8
            })
            .collect();
        let rgb = ImageU8 { width: WIDTH, height: HEIGHT, channels: 3, data: rgb };
        let aux = match self.modality {
            Modality::Thermal => DecodedImage::Mono8(self.thermal(t)),
            Modality::Depth => DecodedImage::Mono16(self.depth(t)),
            Modality::Event => DecodedImage::Mono8(self.events(t, &scene)),
        };
        SynthFrame { rgb, aux, bbox: self.bbox(t) }
    }

    /// Paints the occluding bar (if any) into a one-channel plane with `value`.
    fn occlude_plane(&self, plane: &mut [f32], t: f64, value: f32) {
        if let Some(occ) = &self.occluder {
            let (x0, x1) = occ.span(t);
            for row in plane.chunks_exact_mut(WIDTH) {
                row[x0..x1].fill(value);
            }
        }
    }

    fn thermal(&self, t: usize) -> ImageU8 {
        let tf = t as f64;
        let mut heat = self.bg_heat.clone();
        for obj in self.objects_far_to_near() {
            obj.for_each_pixel(tf, |x, y, u, v| {
                // Warmest in the middle, as a body is.
                heat[y * WIDTH + x] = obj.heat - 25.0 * (u * u + v * v);
            });
        }
        self.occlude_plane(&mut heat, tf, 70.0);
        let seed = self.seed ^ 0x7E47;
        let data = heat
            .iter()
            .enumerate()
            .map(|(i, &v)| (v + 2.0 * hash_noise(seed, t as u64, i as u64)).round().clamp(0.0, 255.0) as u8)
            .collect();
        ImageU8 { width: WIDTH, height: HEIGHT, channels: 1, data }
    }

    fn depth(&self, t: usize) -> ImageU16 {
        let tf = t as f64;
        let mut depth = self.bg_depth.clone();
        for obj in self.objects_far_to_near() {
            if self.flat_target && std::ptr::eq(obj, &self.target) {
                let plane_mm = (self.target_depth_m(t) * 1000.0) as f32;
                obj.for_each_pixel(tf, |x, y, _, _| depth[y * WIDTH + x] = plane_mm);
                continue;
            }
            obj.for_each_pixel(tf, |x, y, u, v| {
                depth[y * WIDTH + x] = obj.depth_mm - 120.0 * (1.0 - (u * u + v * v).min(1.0));
            });
        }
        self.occlude_plane(&mut depth, tf, 800.0);
        let seed = self.seed ^ 0xDE97;
        let data = depth
            .iter()
            .enumerate()
            .map(|(i, &d)| {
                let n = hash_noise(seed, t as u64, i as u64);
                // About 1 % of pixels without a depth reading (0), as real sensors have.
                if n > 0.98 {
                    0
                } else {
                    (d + 15.0 * n).round().clamp(1.0, 65535.0) as u16
                }
            })
            .collect();
        ImageU16 { width: WIDTH, height: HEIGHT, data }
    }

    /// Positive events 255, negative 128, none 0, from the brightness change since `t - 1`.
    fn events(&self, t: usize, scene: &[f32]) -> ImageU8 {
        let prev = self.scene_rgb(t.saturating_sub(1));
        let luma = |p: &[f32]| 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2];
        let seed = self.seed ^ 0xE7E7;
        let data = scene
            .chunks_exact(3)
            .zip(prev.chunks_exact(3))
            .enumerate()
            .map(|(i, (now, before))| {
                let d = luma(now) - luma(before);
                if d > 10.0 {
                    255
                } else if d < -10.0 {
                    128
                } else if hash_noise(seed, t as u64, i as u64) > 0.995 {
                    255 // background activity noise
                } else {
                    0
                }
            })
            .collect();
        ImageU8 { width: WIDTH, height: HEIGHT, channels: 1, data }
    }
}

/// The scene of one sequence of a synthetic set: the condition cycles so that every set holds
/// RGB-normal and RGB-hard scenes in fixed proportions (half normal).
pub fn scene_for(seed: u64, index: usize, modality: Modality) -> Scene {
    let condition = if index.is_multiple_of(2) { Condition::Normal } else { Condition::ALL[1 + (index / 2) % 3] };
    Scene::new(mix64(seed.wrapping_add(index as u64 * 0x1000_0001)), modality, condition)
}

/// The sequence name: `<index>_<condition>`; the RGB-hard ones are those not named `normal`.
pub fn sequence_name(index: usize, condition: Condition) -> String {
    format!("{index:04}_{}", condition.name())
}

/// Writes `count` sequences of `frames` frames in the benchmark layout of the modality (thermal:
/// LasHeR, depth: DepthTrack, event: VisEvent), so that `patrack eval` scores them.
pub fn write_set(
    root: &Path,
    modality: Modality,
    seed: u64,
    count: usize,
    frames: usize,
    mut progress: impl FnMut(usize),
) -> Result<(), WriteError> {
    for index in 0..count {
        let scene = scene_for(seed, index, modality);
        let dir = root.join(sequence_name(index, scene.condition));
        let (rgb_dir, aux_dir) = match modality {
            Modality::Thermal => ("visible", "infrared"),
            Modality::Depth => ("color", "depth"),
            Modality::Event => ("vis_imgs", "event_imgs"),
        };
        let mut gt = String::new();
        for t in 0..frames {
            let f = scene.render(t);
            let name = format!("{:08}.png", t + 1);
            save(&dir.join(rgb_dir).join(&name), &f.rgb.data, WIDTH, HEIGHT, image::ExtendedColorType::Rgb8)?;
            let aux_path = dir.join(aux_dir).join(&name);
            match &f.aux {
                DecodedImage::Mono8(im) => save(&aux_path, &im.data, WIDTH, HEIGHT, image::ExtendedColorType::L8)?,
                DecodedImage::Mono16(im) => {
                    let bytes: Vec<u8> = im.data.iter().flat_map(|v| v.to_ne_bytes()).collect();
                    save(&aux_path, &bytes, WIDTH, HEIGHT, image::ExtendedColorType::L16)?
                }
                _ => unreachable!("the generator renders 8-bit grey or 16-bit depth aux images"),
            }
            let b = f.bbox;
            gt.push_str(&format!("{:.2},{:.2},{:.2},{:.2}\n", b.x, b.y, b.w, b.h));
        }
        let gt_name = match modality {
            Modality::Thermal => "init.txt",
            _ => "groundtruth.txt",
        };
        write_text(&dir.join(gt_name), &gt)?;
        if modality == Modality::Event {
            // VisEvent: 1 = target present.
            write_text(&dir.join("absent_label.txt"), &"1\n".repeat(frames))?;
        }
        progress(index + 1);
    }
    Ok(())
}

/// Errors writing a synthetic set.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{path}: {cause}")]
    Io { path: std::path::PathBuf, cause: std::io::Error },
    #[error("{path}: {cause}")]
    Image { path: std::path::PathBuf, cause: image::ImageError },
}

fn ensure_parent(path: &Path) -> Result<(), WriteError> {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).map_err(|cause| WriteError::Io { path: p.into(), cause })?;
    }
    Ok(())
}

fn save(path: &Path, data: &[u8], w: usize, h: usize, kind: image::ExtendedColorType) -> Result<(), WriteError> {
    ensure_parent(path)?;
    image::save_buffer(path, data, w as u32, h as u32, kind)
        .map_err(|cause| WriteError::Image { path: path.into(), cause })
}

fn write_text(path: &Path, text: &str) -> Result<(), WriteError> {
    ensure_parent(path)?;
    std::fs::write(path, text).map_err(|cause| WriteError::Io { path: path.into(), cause })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_pixels() {
        let a = Scene::new(42, Modality::Depth, Condition::Dark).render(7);
        let b = Scene::new(42, Modality::Depth, Condition::Dark).render(7);
        assert_eq!(a.rgb.data, b.rgb.data);
        assert_eq!(a.bbox, b.bbox);
        match (a.aux, b.aux) {
            (DecodedImage::Mono16(x), DecodedImage::Mono16(y)) => assert_eq!(x.data, y.data),
            _ => panic!("depth renders 16-bit"),
        }
    }

    fn mean_in(data: &[u8], channels: usize, b: &BoxXywh, inside: bool) -> f64 {
        let (mut s, mut n) = (0.0, 0.0);
        for y in 0..HEIGHT {
            for x in 0..WIDTH {
                let c = (x as f64 + 0.5, y as f64 + 0.5);
                let within = c.0 > b.x + 0.25 * b.w
                    && c.0 < b.x + 0.75 * b.w
                    && c.1 > b.y + 0.25 * b.h
                    && c.1 < b.y + 0.75 * b.h;
                let outside = c.0 < b.x - 4.0 || c.0 > b.x + b.w + 4.0 || c.1 < b.y - 4.0 || c.1 > b.y + b.h + 4.0;
                if (inside && within) || (!inside && outside) {
                    s += data[(y * WIDTH + x) * channels] as f64;
                    n += 1.0;
                }
            }
        }
        s / n
    }

    #[test]
    fn thermal_target_is_warm_and_dark_rgb_is_dark() {
        for seed in 0..5 {
            let scene = Scene::new(seed, Modality::Thermal, Condition::Dark);
            let f = scene.render(3);
            let DecodedImage::Mono8(th) = &f.aux else { panic!("thermal is mono8") };
            let (inside, outside) = (mean_in(&th.data, 1, &f.bbox, true), mean_in(&th.data, 1, &f.bbox, false));
            assert!(inside > outside + 50.0, "seed {seed}: target {inside:.1} vs background {outside:.1}");
            let mean_rgb = f.rgb.data.iter().map(|&v| v as f64).sum::<f64>() / f.rgb.data.len() as f64;
            assert!(mean_rgb < 20.0, "dark scene mean {mean_rgb}");
        }
    }

    #[test]
    fn events_fire_on_the_moving_target_only() {
        let scene = Scene::new(3, Modality::Event, Condition::Normal);
        let f = scene.render(5);
        let DecodedImage::Mono8(ev) = &f.aux else { panic!("events are mono8") };
        let b = f.bbox;
        let grown = BoxXywh::new(b.x - 8.0, b.y - 8.0, b.w + 16.0, b.h + 16.0);
        let count = |inside: bool| {
            let mut n = 0usize;
            for y in 0..HEIGHT {
                for x in 0..WIDTH {
                    let within = (x as f64) >= grown.x
                        && (x as f64) < grown.x + grown.w
                        && (y as f64) >= grown.y
                        && (y as f64) < grown.y + grown.h;
                    if within == inside && ev.data[y * WIDTH + x] != 0 {
                        n += 1;
                    }
                }
            }
            n
        };
        // Background activity noise is ~0.25 % of pixels; an occluder may add a bar of events.
        assert!(count(true) > 20, "target fires {}", count(true));
        if scene.occluder.is_none() {
            assert!(count(false) < WIDTH * HEIGHT / 100, "background fires {}", count(false));
        }
    }

    #[test]
    fn a_scene_of_known_geometry_puts_the_target_on_its_plane() {
        let scene = Scene::with_known_geometry(11, Condition::Normal);
        assert!(scene.occluder.is_none());
        let k = Scene::intrinsics();
        for t in [0, 20, 45] {
            let f = scene.render(t);
            let DecodedImage::Mono16(depth) = &f.aux else { panic!("depth renders 16-bit") };
            let z_mm = scene.target_depth_m(t) * 1000.0;
            // Centre pixel of the box: on the plane within the 15 mm noise, or a hole.
            let (cx, cy) = f.bbox.center();
            let d = depth.data[cy as usize * WIDTH + cx as usize];
            assert!(d == 0 || (f64::from(d) - z_mm).abs() <= 15.5, "t {t}: {d} mm vs plane {z_mm:.1} mm");
            // The position projects back to the box centre (pixel centres: box coordinate - 0.5).
            let [x, y, z] = scene.target_position_m(t);
            assert_eq!(z, z_mm / 1000.0);
            let u = 182.0 * x / z + 127.5;
            let v = 182.0 * y / z + 95.5;
            assert!((u - (cx - 0.5)).abs() < 1e-9 && (v - (cy - 0.5)).abs() < 1e-9, "t {t}: ({u}, {v})");
            assert_eq!((k.fx_px, k.cx_px, k.cy_px), (182.0, 127.5, 95.5));
        }
        // The plane moves in depth: 15 % of the target's distance.
        let zs: Vec<f64> = (0..90).map(|t| scene.target_depth_m(t)).collect();
        let (lo, hi) = zs.iter().fold((f64::MAX, 0.0f64), |(lo, hi), z| (lo.min(*z), hi.max(*z)));
        assert!(hi / lo > 1.25, "depth range {lo:.3}..{hi:.3} m");
        assert!(hi < 3.0, "the target stays in front of the distractors");
    }

    #[test]
    fn boxes_stay_inside_the_frame() {
        for i in 0..20 {
            let scene = scene_for(9, i, Modality::Thermal);
            for t in [0, 50, 400] {
                let b = scene.bbox(t);
                assert!(b.x >= 0.0 && b.y >= 0.0 && b.x + b.w <= WIDTH as f64 && b.y + b.h <= HEIGHT as f64, "{b:?}");
            }
        }
    }
}
