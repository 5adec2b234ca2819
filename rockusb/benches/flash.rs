//! Flash pipeline benchmark (filled in below in a later commit).
fn main() {}
