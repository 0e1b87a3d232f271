//! Every user program's build script (`build = "../build.rs"` in each): links it with the
//! shared script at the start of Catena's user range (elf_load::USER), static, not PIE.
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo:rustc-link-arg-bins=-T{dir}/../linker.ld");
    println!("cargo:rustc-link-arg-bins=-static");
    println!("cargo:rustc-link-arg-bins=--no-dynamic-linker");
    // Segments aligned to the 4 KiB pages the kernel maps, not the linker's 64 KiB default:
    // no padding in the files.
    println!("cargo:rustc-link-arg-bins=-zmax-page-size=4096");
    println!("cargo:rerun-if-changed=../linker.ld");
}
