// The least a Rust process costs to start on this machine: bench/status.py times it beside
// `steward status` and the C client (built by bench/status.sh with the release profile's
// settings that matter for start: optimized, panics abort).
fn main() {
    println!("hello");
}
