//! IVF writing, shared with the relay's `--capture`: it lives in
//! `synth_common::ivf`, re-exported here for `export`.

pub use synth_common::ivf::*;
