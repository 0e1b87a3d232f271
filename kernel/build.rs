//! Links the kernel with its own script (image layout, Linux header fields, linkme slices),
//! and embeds the hyp: `cargo xtask build` builds it first and names it in `CATENA_HYP_BIN`.
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

    // The hyp image. Without one (a plain `cargo build`/`clippy`), an empty file: the kernel
    // then reports that it has no hyp to install and runs without one.
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    println!("cargo:rerun-if-env-changed=CATENA_HYP_BIN");
    let bytes = match std::env::var("CATENA_HYP_BIN") {
        Ok(p) => {
            println!("cargo:rerun-if-changed={p}");
            std::fs::read(&p).unwrap_or_else(|e| panic!("CATENA_HYP_BIN={p}: {e}"))
        }
        Err(_) => Vec::new(),
    };
    std::fs::write(out.join("hyp.bin"), bytes).expect("writing OUT_DIR/hyp.bin");
}
