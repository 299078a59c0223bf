//! Benchmark evaluation: the toolkits' scores ([`metrics`] for the RGB-T sets after the PyPI
//! `rgbt` toolkit, [`longterm`] for DepthTrack after the VOT toolkit's long-term analysis).

pub mod longterm;
pub mod metrics;
