//! Rebuild when SQL changes: migrations and queries are compiled in with include_str!.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=queries");
}
