//! The tracking network as a CUDA graph: captured once, then replayed with one launch per frame.
//!
//! At batch 1 the ViT-B step is about a thousand small kernels, and launched one at a time from
//! the host it costs the launch overhead rather than the arithmetic (on an H100, 15 ms eager
//! against well under 1 ms of GPU work). The graph keeps its own input buffers: each run copies
//! the template tokens and the search crop into them, replays, and hands back the graph's output
//! buffers. Needs the `cuda` feature (`csrc/cuda_graph.cpp`); without it [`GraphedTrack::capture`]
//! says so and callers run the network eagerly.

use tch::{Device, Kind, Tensor};

use super::{HeadOutput, PATrack};

/// Errors capturing or replaying a graph.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("CUDA graphs need the `cuda` build feature; this binary was built without it")]
    NotBuilt,
    #[error("CUDA graphs run on a CUDA device, the network is on {0:?}")]
    NotCuda(Device),
    #[error("CUDA graph: {0}")]
    Cuda(String),
    #[error("CUDA graph capture failed: {0}")]
    Capture(String),
    #[error("CUDA graph replay differs from the eager network by {0:e} (capture is broken)")]
    Mismatch(f64),
    #[error("{what} has shape {got:?}, the graph was captured for {want:?}")]
    Shape { what: &'static str, got: Vec<i64>, want: Vec<i64> },
}

/// [`PATrack::track`] captured as a CUDA graph for one template-token and one crop shape.
pub struct GraphedTrack {
    graph: raw::Graph,
    z_tokens: Tensor,
    x: Tensor,
    out: HeadOutput,
}

impl std::fmt::Debug for GraphedTrack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphedTrack").field("z_tokens", &self.z_tokens.size()).field("x", &self.x.size()).finish()
    }
}

impl GraphedTrack {
    /// Captures `model.track` for inputs shaped like `z_tokens` and `x` (contents are copied in
    /// as the first inputs). The network runs a few times eagerly first, so that lazy
    /// initialisation (cuBLAS workspaces, cuDNN plans) stays out of the graph, and the first
    /// replay is checked against the eager result.
    pub fn capture(model: &PATrack, z_tokens: &Tensor, x: &Tensor) -> Result<Self, GraphError> {
        let device = model.device();
        let Device::Cuda(index) = device else {
            return Err(GraphError::NotCuda(device));
        };
        let graph = raw::Graph::new(index)?;
        let z_static = z_tokens.to_device(device).copy();
        let x_static = x.to_device(device).copy();

        graph.enter_stream()?;
        let captured = (|| {
            let mut eager = None;
            for _ in 0..3 {
                eager = Some(model.track(&z_static, &x_static));
            }
            graph.capture_begin()?;
            let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| model.track(&z_static, &x_static)));
            let ended = graph.capture_end();
            let out = out.map_err(|p| GraphError::Capture(panic_text(&p)))?;
            ended?;
            Ok::<_, GraphError>((eager.expect("three warm-up runs"), out))
        })();
        let left = graph.leave_stream();
        let (eager, out) = captured?;
        left?;

        let g = Self { graph, z_tokens: z_static, x: x_static, out };
        let replayed = g.replay()?;
        let diff = [
            (&eager.score_map, &replayed.score_map),
            (&eager.size_map, &replayed.size_map),
            (&eager.offset_map, &replayed.offset_map),
        ]
        .iter()
        .map(|(a, b)| (a.to_kind(Kind::Float) - b.to_kind(Kind::Float)).abs().max().double_value(&[]))
        .fold(0.0f64, |m, d| if d.is_nan() { f64::INFINITY } else { m.max(d) });
        // The same kernels on the same data: anything beyond rounding-order noise is a bug.
        let tolerance = if model.kind() == Kind::Float { 1e-4 } else { 2e-2 };
        if diff > tolerance {
            return Err(GraphError::Mismatch(diff));
        }
        Ok(g)
    }

    /// The network on new inputs. The returned maps are the graph's own output buffers: they stay
    /// valid until the next `run` overwrites them (copy them to keep them longer).
    pub fn run(&mut self, z_tokens: &Tensor, x: &Tensor) -> Result<HeadOutput, GraphError> {
        check_shape("template tokens", z_tokens, &self.z_tokens)?;
        check_shape("search crop", x, &self.x)?;
        let _guard = tch::no_grad_guard();
        self.z_tokens.f_copy_(z_tokens).map_err(|e| GraphError::Cuda(e.to_string()))?;
        self.x.f_copy_(x).map_err(|e| GraphError::Cuda(e.to_string()))?;
        self.replay()
    }

    fn replay(&self) -> Result<HeadOutput, GraphError> {
        self.graph.replay()?;
        Ok(HeadOutput {
            score_map: self.out.score_map.shallow_clone(),
            size_map: self.out.size_map.shallow_clone(),
            offset_map: self.out.offset_map.shallow_clone(),
        })
    }
}

fn check_shape(what: &'static str, got: &Tensor, want: &Tensor) -> Result<(), GraphError> {
    if got.size() != want.size() {
        return Err(GraphError::Shape { what, got: got.size(), want: want.size() });
    }
    Ok(())
}

fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default()
}

#[cfg(feature = "cuda")]
mod raw {
    use std::ffi::{c_char, c_int, c_void, CStr};

    use super::GraphError;

    extern "C" {
        fn patrack_graph_new(device: c_int, out: *mut *mut c_void, err: *mut *mut c_char) -> c_int;
        fn patrack_graph_free(g: *mut c_void);
        fn patrack_graph_enter_stream(g: *mut c_void, err: *mut *mut c_char) -> c_int;
        fn patrack_graph_leave_stream(g: *mut c_void, err: *mut *mut c_char) -> c_int;
        fn patrack_graph_capture_begin(g: *mut c_void, err: *mut *mut c_char) -> c_int;
        fn patrack_graph_capture_end(g: *mut c_void, err: *mut *mut c_char) -> c_int;
        fn patrack_graph_replay(g: *mut c_void, err: *mut *mut c_char) -> c_int;
    }

    /// Owns an `at::cuda::CUDAGraph` and the side stream it is captured on.
    pub struct Graph(*mut c_void);

    // SAFETY: the graph object is used from one thread at a time (`&self` calls are serialised
    // by the owner, a `Tracker`); CUDA graphs may be launched from any host thread.
    unsafe impl Send for Graph {}

    fn check(rc: c_int, err: *mut c_char) -> Result<(), GraphError> {
        if rc == 0 {
            return Ok(());
        }
        let msg = if err.is_null() {
            "unknown error".to_string()
        } else {
            // SAFETY: the shim strdup()s a NUL-terminated message; we own and free it.
            let m = unsafe { CStr::from_ptr(err) }.to_string_lossy().into_owned();
            unsafe { libc::free(err.cast()) };
            m
        };
        Err(GraphError::Cuda(msg.lines().next().unwrap_or_default().to_string()))
    }

    macro_rules! call {
        ($f:ident, $g:expr) => {{
            let mut err = std::ptr::null_mut();
            // SAFETY: `$g` is a live graph created by patrack_graph_new.
            let rc = unsafe { $f($g, &mut err) };
            check(rc, err)
        }};
    }

    impl Graph {
        pub fn new(device: usize) -> Result<Self, GraphError> {
            crate::device::load_cuda().map_err(|e| GraphError::Cuda(e.to_string()))?;
            let mut out = std::ptr::null_mut();
            let mut err = std::ptr::null_mut();
            // SAFETY: out-pointers valid for the call.
            let rc = unsafe { patrack_graph_new(device as c_int, &mut out, &mut err) };
            check(rc, err)?;
            Ok(Self(out))
        }
        pub fn enter_stream(&self) -> Result<(), GraphError> {
            call!(patrack_graph_enter_stream, self.0)
        }
        pub fn leave_stream(&self) -> Result<(), GraphError> {
            call!(patrack_graph_leave_stream, self.0)
        }
        pub fn capture_begin(&self) -> Result<(), GraphError> {
            call!(patrack_graph_capture_begin, self.0)
        }
        pub fn capture_end(&self) -> Result<(), GraphError> {
            call!(patrack_graph_capture_end, self.0)
        }
        pub fn replay(&self) -> Result<(), GraphError> {
            call!(patrack_graph_replay, self.0)
        }
    }

    impl Drop for Graph {
        fn drop(&mut self) {
            // SAFETY: created by patrack_graph_new, freed once.
            unsafe { patrack_graph_free(self.0) }
        }
    }
}

/// Without the `cuda` feature no graph can be made; the methods exist so callers need no cfg.
#[cfg(not(feature = "cuda"))]
mod raw {
    use super::GraphError;

    pub struct Graph(());

    impl Graph {
        pub fn new(_device: usize) -> Result<Self, GraphError> {
            Err(GraphError::NotBuilt)
        }
        pub fn enter_stream(&self) -> Result<(), GraphError> {
            Err(GraphError::NotBuilt)
        }
        pub fn leave_stream(&self) -> Result<(), GraphError> {
            Err(GraphError::NotBuilt)
        }
        pub fn capture_begin(&self) -> Result<(), GraphError> {
            Err(GraphError::NotBuilt)
        }
        pub fn capture_end(&self) -> Result<(), GraphError> {
            Err(GraphError::NotBuilt)
        }
        pub fn replay(&self) -> Result<(), GraphError> {
            Err(GraphError::NotBuilt)
        }
    }
}
