//! One handler per AWS IoT operation, grouped by resource.

pub mod cas;
pub mod certificates;
pub mod misc;
pub mod policies;
pub mod principals;
pub mod things;
