//! Links the kernel with its own script (image layout, Linux header fields, linkme slices).
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo:rustc-link-arg-bins=-T{dir}/linker.ld");
    // Static PIE: lld emits R_AARCH64_RELATIVE relocations that entry.rs applies. The
    // prebuilt core/alloc are not PIC, so relocations land in .rodata too (-z notext): they
    // are applied with the MMU off, before anything is mapped read-only.
    println!("cargo:rustc-link-arg-bins=-pie");
    println!("cargo:rustc-link-arg-bins=--no-dynamic-linker");
    println!("cargo:rustc-link-arg-bins=-z");
    println!("cargo:rustc-link-arg-bins=notext");
    // The linker script lays out read-only-after-relocation data itself (no PT_GNU_RELRO).
    println!("cargo:rustc-link-arg-bins=-z");
    println!("cargo:rustc-link-arg-bins=norelro");
    println!("cargo:rerun-if-changed=linker.ld");
}
