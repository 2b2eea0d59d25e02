//! Test helpers: resource-only DLLs built from `.rc` text with the real MinGW-w64 tools
//! (windres compiles, ld links, objcopy strips to `.rsrc` alone as in a `.mui`). Nothing
//! binary is checked in.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// True when running under CI, where skipping is not allowed.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Prints a notice on the real stderr.
pub fn notice(msg: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "NOTICE: {msg}");
}

/// The target of a build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// PE32+ (x86-64).
    X64,
    /// PE32 (i386).
    X86,
}

impl Arch {
    fn prefix(self) -> &'static str {
        match self {
            Arch::X64 => "x86_64-w64-mingw32",
            Arch::X86 => "i686-w64-mingw32",
        }
    }
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Whether windres, ld and objcopy for both targets and a C preprocessor are installed
/// (a failure under CI when not).
pub fn tools() -> bool {
    let needed = [
        "x86_64-w64-mingw32-windres",
        "x86_64-w64-mingw32-ld",
        "x86_64-w64-mingw32-objcopy",
        "i686-w64-mingw32-windres",
        "i686-w64-mingw32-ld",
        "cpp",
    ];
    let missing: Vec<&str> = needed.iter().copied().filter(|t| !have(t)).collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        !in_ci(),
        "CI=true but {} missing (apt-get install binutils-mingw-w64 cpp)",
        missing.join(", ")
    );
    notice(&format!(
        "{} not installed (apt-get install binutils-mingw-w64 cpp); skipping this test",
        missing.join(", ")
    ));
    false
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// A fresh scratch directory under Cargo's test temp dir.
pub fn scratch(name: &str) -> PathBuf {
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("mui-{}-{name}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Compiles `rc` (UTF-8 text; it should start with `#pragma code_page(65001)`) with windres
/// and links a resource-only DLL with `ld --dll -e 0`. With `rsrc_only`, objcopy then removes
/// every section but `.rsrc`, as in a real `.mui` file. Returns the file's bytes.
pub fn build(rc: &str, arch: Arch, rsrc_only: bool) -> Vec<u8> {
    let dir = scratch("build");
    let p = arch.prefix();
    std::fs::write(dir.join("x.rc"), rc).expect("write rc");
    // windres preprocesses with `gcc -E` by default; a MinGW gcc is not needed for an .rc
    // without #include, so the host's C preprocessor is used.
    run(Command::new(format!("{p}-windres"))
        .current_dir(&dir)
        .args(["--preprocessor=cpp", "-i", "x.rc", "-o", "x.o"]));
    run(Command::new(format!("{p}-ld")).current_dir(&dir).args([
        "--dll",
        "-e",
        "0",
        "-s",
        "-o",
        "FirewallAPI.dll.mui",
        "x.o",
    ]));
    let mut file = "FirewallAPI.dll.mui";
    if rsrc_only {
        run(Command::new(format!("{p}-objcopy"))
            .current_dir(&dir)
            .args([
                "-R",
                ".text",
                "-R",
                ".idata",
                "FirewallAPI.dll.mui",
                "rsrc-only.mui",
            ]));
        file = "rsrc-only.mui";
    }
    let bytes = std::fs::read(dir.join(file)).expect("read output");
    let _ = std::fs::remove_dir_all(&dir);
    bytes
}

/// Escapes text for an `.rc` string literal (`"` doubled, `\` doubled).
pub fn rc_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\"\"")
}

/// The strings of one language: (primary language, sublanguage, [(id, text)]).
pub type LangStrings<'a> = (u16, u16, &'a [(u32, &'a str)]);

/// An `.rc` STRINGTABLE per language.
pub fn rc_tables(langs: &[LangStrings<'_>]) -> String {
    let mut rc = String::from("#pragma code_page(65001)\n");
    // winnt.h's values, defined here because no MinGW headers are needed.
    rc.push_str("#define LANG_DUTCH 0x13\n#define SUBLANG_DUTCH 0x01\n");
    for (primary, sub, strings) in langs {
        rc.push_str(&format!(
            "LANGUAGE {primary:#x}, {sub:#x}\nSTRINGTABLE\nBEGIN\n"
        ));
        for (id, text) in *strings {
            rc.push_str(&format!("  {id} \"{}\"\n", rc_escape(text)));
        }
        rc.push_str("END\n");
    }
    rc
}

/// The Dutch names of localization.md (the ✔ and ~ ones), plus test-only text for the two
/// description IDs, which localization.md does not give in Dutch.
pub const DUTCH: &[(u32, &str)] = &[
    (28752, "Extern bureaublad"),
    (28753, "Extern bureaublad (TCP-In)"),
    (28775, "Extern bureaublad - Gebruikersmodus (TCP-In)"),
    (28776, "Extern bureaublad - Gebruikersmodus (UDP-In)"),
    (28777, "test text for ID 28777 (a description)"),
    (28778, "Extern bureaublad - Schaduw (TCP-In)"),
    (28779, "test text for ID 28779 (a description)"),
];

/// The Dutch table with `LANGUAGE LANG_DUTCH, SUBLANG_DUTCH`, as the brief writes it.
pub fn dutch_rc() -> String {
    let mut rc = String::from(
        "#pragma code_page(65001)\n#define LANG_DUTCH 0x13\n#define SUBLANG_DUTCH 0x01\n\
         LANGUAGE LANG_DUTCH, SUBLANG_DUTCH\nSTRINGTABLE\nBEGIN\n",
    );
    for (id, text) in DUTCH {
        rc.push_str(&format!("  {id} \"{}\"\n", rc_escape(text)));
    }
    rc.push_str("END\n");
    rc
}

/// A small deterministic PRNG (xorshift64*).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

pub fn le16(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
pub fn le32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}
pub fn put32(b: &mut [u8], o: usize, v: u32) {
    b[o..o + 4].copy_from_slice(&v.to_le_bytes());
}
pub fn put16(b: &mut [u8], o: usize, v: u16) {
    b[o..o + 2].copy_from_slice(&v.to_le_bytes());
}

/// Where the resource tree is in a PE file (read independently of the crate, from the
/// headers): (file offset of the tree, its RVA, section file offset, section RVA).
pub fn rsrc_location(pe: &[u8]) -> (usize, u32, usize, u32) {
    let nt = le32(pe, 0x3c) as usize;
    let magic = le16(pe, nt + 24);
    let dirs = nt + 24 + if magic == 0x20b { 112 } else { 96 };
    let rva = le32(pe, dirs + 2 * 8);
    let nsec = le16(pe, nt + 6) as usize;
    let opt = le16(pe, nt + 20) as usize;
    let sec0 = nt + 24 + opt;
    for i in 0..nsec {
        let s = sec0 + i * 40;
        let va = le32(pe, s + 12);
        let vsz = le32(pe, s + 8);
        let raw = le32(pe, s + 20) as usize;
        if rva >= va && rva < va + vsz {
            return (raw + (rva - va) as usize, rva, raw, va);
        }
    }
    panic!("no section holds the resource directory");
}

/// A directory table of the tree: (its file offset, its entries as (name_or_id, offset), the
/// file offset of each entry).
pub fn table_at(pe: &[u8], tree: usize, off: u32) -> Vec<(u32, u32, usize)> {
    let t = tree + off as usize;
    let n = le16(pe, t + 12) as usize + le16(pe, t + 14) as usize;
    (0..n)
        .map(|i| {
            let e = t + 16 + i * 8;
            (le32(pe, e), le32(pe, e + 4), e)
        })
        .collect()
}
