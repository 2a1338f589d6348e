//! Stage 4: a leveled LSM tree with a manifest, bloom filters and merging iterators.
#![forbid(unsafe_code)]
