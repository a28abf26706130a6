//! testkit's own tests: one test binary (one link), a module per part.

mod harness;
mod testchild;
