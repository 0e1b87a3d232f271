//! Links the hyp with its own script: its own image, apart from the kernel's.
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo:rustc-link-arg-bins=-T{dir}/linker.ld");
    // Static PIE like the kernel: the kernel applies the R_AARCH64_RELATIVE relocations for
    // the address it copies the image to (`hyp_abi::relocate`), before anything runs.
    println!("cargo:rustc-link-arg-bins=-pie");
    println!("cargo:rustc-link-arg-bins=--no-dynamic-linker");
    println!("cargo:rustc-link-arg-bins=-z");
    println!("cargo:rustc-link-arg-bins=notext");
    println!("cargo:rustc-link-arg-bins=-z");
    println!("cargo:rustc-link-arg-bins=norelro");
    println!("cargo:rerun-if-changed=linker.ld");
}
