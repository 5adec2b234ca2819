fn main() {
    eprintln!("nanopi-m6: not yet implemented");
    std::process::exit(1);
}
