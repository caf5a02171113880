//! The sans-I/O core: machine geometry, allocation, the job queue and the
//! controller. Nothing in here touches sockets, threads or the wall clock;
//! time is passed in as Unix seconds.

pub mod allocator;
pub mod area_to_rect;
pub mod candidate_filter;
pub mod coordinates;
pub mod pack_tree;
