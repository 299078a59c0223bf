//! Benchmark evaluation: the toolkits' scores ([`metrics`] for the RGB-T sets after the PyPI
//! `rgbt` toolkit, [`longterm`] for DepthTrack after the VOT toolkit's long-term analysis), box
//! files of ground truth and raw results in the formats the toolkit reads ([`boxfile`]), the
//! benchmarks' folder layouts ([`layout`]), running the tracker over them ([`runner`]) and the
//! report ([`report`]).

pub mod boxfile;
pub mod layout;
pub mod longterm;
pub mod metrics;
pub mod plot;
pub mod report;
pub mod runner;
