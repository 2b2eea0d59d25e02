//! `guestwall reg`: reg.exe on offline hives, as a process.

mod common;

use common::*;

/// Microsoft's offline Mitigation 2 script ("Azure VM guest OS firewall is blocking inbound
/// traffic"), its REG DELETE lines exactly as published.
const ARTICLE_DELETES: &[&str] = &[
    r#"REG DELETE "HKLM\BROKENSYSTEM\ControlSet001\services\SharedAccess\Parameters\FirewallPolicy\DomainProfile" /v DoNotAllowExceptions"#,
    r#"REG DELETE "HKLM\BROKENSYSTEM\ControlSet001\services\SharedAccess\Parameters\FirewallPolicy\PublicProfile" /v DoNotAllowExceptions"#,
    r#"REG DELETE "HKLM\BROKENSYSTEM\ControlSet001\services\SharedAccess\Parameters\FirewallPolicy\StandardProfile" /v DoNotAllowExceptions"#,
    r#"REG DELETE "HKLM\BROKENSYSTEM\ControlSet002\services\SharedAccess\Parameters\FirewallPolicy\DomainProfile" /v DoNotAllowExceptions"#,
    r#"REG DELETE "HKLM\BROKENSYSTEM\ControlSet002\services\SharedAccess\Parameters\FirewallPolicy\PublicProfile" /v DoNotAllowExceptions"#,
    r#"REG DELETE "HKLM\BROKENSYSTEM\ControlSet002\services\SharedAccess\Parameters\FirewallPolicy\StandardProfile" /v DoNotAllowExceptions"#,
];

/// Splits a cmd.exe line into words: spaces separate, double quotes group.
fn cmd_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            ' ' if !quoted => {
                if any {
                    words.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        words.push(cur);
    }
    words
}

/// Runs one `REG ...` line of a script against `hive` mounted as HKLM\BROKENSYSTEM, with
/// `answer` on standard input and `extra` words appended (e.g. `/f`).
fn run_line(hive: &str, line: &str, answer: &str, extra: &[&str]) -> std::process::Output {
    let words = cmd_words(line);
    assert!(words[0].eq_ignore_ascii_case("reg"));
    let load = format!("HKLM\\BROKENSYSTEM={hive}");
    let mut args: Vec<&str> = vec!["reg", "--load", &load];
    args.extend(words[1..].iter().map(String::as_str));
    args.extend(extra);
    gw_stdin(&args, answer)
}

fn dword(hive: &str, key: &str, value: &str) -> Option<String> {
    let o = gw(&["hive", "get", hive, key, value]);
    o.status.success().then(|| stdout(&o).trim().to_string())
}

#[test]
fn the_articles_reg_delete_lines_run_verbatim() {
    let t = TempDir::new("article");
    let h = sample(&t.0);
    let policy = "ControlSet001\\Services\\SharedAccess\\Parameters\\FirewallPolicy";
    // Give every profile the shield, as on the article's broken VM.
    for p in ["DomainProfile", "StandardProfile"] {
        let o = gw(&[
            "reg",
            "--hive",
            &h,
            "add",
            &format!("{policy}\\{p}"),
            "/v",
            "DoNotAllowExceptions",
            "/t",
            "REG_DWORD",
            "/d",
            "1",
            "/f",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    // Typed at a console, reg.exe asks; the answer comes on standard input.
    for line in &ARTICLE_DELETES[..3] {
        let o = run_line(&h, line, "yes\n", &[]);
        assert_eq!(o.status.code(), Some(0), "{line}: {}", stderr(&o));
        assert!(stdout(&o).starts_with("The operation completed successfully."));
    }
    for p in ["DomainProfile", "StandardProfile", "PublicProfile"] {
        assert_eq!(
            dword(&h, &format!("{policy}\\{p}"), "DoNotAllowExceptions"),
            None,
            "{p}"
        );
        assert_eq!(
            dword(&h, &format!("{policy}\\{p}"), "EnableFirewall").as_deref(),
            Some("1")
        );
    }
    // The sample has no ControlSet002: as with reg.exe, those lines fail and change nothing.
    let before = std::fs::read(&h).unwrap();
    for line in &ARTICLE_DELETES[3..] {
        let o = run_line(&h, line, "yes\n", &[]);
        assert_eq!(o.status.code(), Some(2), "{line}");
        assert!(stderr(&o).contains("unable to find the specified registry key or value"));
    }
    assert_eq!(std::fs::read(&h).unwrap(), before);
    // Run again, now with /f as the issue's example: the values are gone, so it is an error.
    let o = run_line(&h, ARTICLE_DELETES[0], "", &["/f"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn the_articles_lines_on_a_real_windows7_hive_with_two_control_sets() {
    let Some(c) = corpus() else { return };
    let t = TempDir::new("article-w7");
    let h = copy_into(&t.0, &c.join("regipy/SYSTEM"), "SYSTEM");
    let policy = |cs: &str, p: &str| {
        format!("ControlSet00{cs}\\services\\SharedAccess\\Parameters\\FirewallPolicy\\{p}")
    };
    for cs in ["1", "2"] {
        for p in ["DomainProfile", "PublicProfile", "StandardProfile"] {
            let o = gw(&[
                "reg",
                "--hive",
                &h,
                "add",
                &policy(cs, p),
                "/v",
                "DoNotAllowExceptions",
                "/t",
                "REG_DWORD",
                "/d",
                "1",
                "/f",
            ]);
            assert!(o.status.success(), "{}", stderr(&o));
        }
    }
    let backups_before = t.files().len();
    for line in ARTICLE_DELETES {
        let o = run_line(&h, line, "", &["/f"]);
        assert_eq!(o.status.code(), Some(0), "{line}: {}", stderr(&o));
    }
    for cs in ["1", "2"] {
        for p in ["DomainProfile", "PublicProfile", "StandardProfile"] {
            assert_eq!(dword(&h, &policy(cs, p), "DoNotAllowExceptions"), None);
            assert_eq!(
                dword(&h, &policy(cs, p), "EnableFirewall").as_deref(),
                Some("1")
            );
        }
    }
    // One backup per change, each kept.
    assert_eq!(t.files().len(), backups_before + ARTICLE_DELETES.len());
}

#[test]
fn without_f_and_without_an_answer_nothing_changes() {
    let t = TempDir::new("noanswer");
    let h = sample(&t.0);
    let before = std::fs::read(&h).unwrap();
    let key = "ControlSet001\\Services\\SharedAccess\\Parameters\\FirewallPolicy\\PublicProfile";
    let o = gw(&[
        "reg",
        "--hive",
        &h,
        "delete",
        key,
        "/v",
        "DoNotAllowExceptions",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("add /f"), "{}", stderr(&o));
    let o = gw_stdin(
        &[
            "reg",
            "--hive",
            &h,
            "delete",
            key,
            "/v",
            "DoNotAllowExceptions",
        ],
        "no\n",
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cancelled"));
    assert_eq!(std::fs::read(&h).unwrap(), before);
    assert_eq!(t.files(), ["SYSTEM"]);
}

#[test]
fn add_takes_every_type_and_query_prints_like_reg_exe() {
    let t = TempDir::new("types");
    let h = sample(&t.0);
    let k = "Software\\Test";
    let cases: &[(&str, &str, &str)] = &[
        ("sz", "REG_SZ", "C:\\Program Files\\x"),
        ("expand", "REG_EXPAND_SZ", "%SystemRoot%\\system32"),
        ("multi", "REG_MULTI_SZ", "one\\0two"),
        ("dword", "REG_DWORD", "0x0d3d"),
        ("dwordbe", "REG_DWORD_BIG_ENDIAN", "1"),
        ("qword", "REG_QWORD", "18446744073709551615"),
        ("bin", "REG_BINARY", "00ff10"),
        ("none", "REG_NONE", ""),
        ("link", "REG_LINK", "\\Registry\\Machine\\X"),
        ("reslist", "REG_RESOURCE_LIST", "0102"),
        ("fullres", "REG_FULL_RESOURCE_DESCRIPTOR", "03"),
        ("reqs", "REG_RESOURCE_REQUIREMENTS_LIST", "04"),
    ];
    for (name, ty, data) in cases {
        let o = gw(&[
            "reg", "--hive", &h, "add", k, "/v", name, "/t", ty, "/d", data, "/f",
        ]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
    }
    let o = gw(&[
        "reg",
        "--hive",
        &h,
        "add",
        k,
        "/v",
        "sep",
        "/t",
        "REG_MULTI_SZ",
        "/s",
        "#",
        "/d",
        "a#b",
        "/f",
    ]);
    assert!(o.status.success());
    let o = gw(&["reg", "--hive", &h, "add", k, "/ve", "/d", "default", "/f"]);
    assert!(o.status.success());
    let o = gw(&["reg", "--hive", &h, "query", k]);
    assert_eq!(
        stdout(&o),
        "\nHKEY_LOCAL_MACHINE\\SYSTEM\\Software\\Test\n\
         \x20   sz    REG_SZ    C:\\Program Files\\x\n\
         \x20   expand    REG_EXPAND_SZ    %SystemRoot%\\system32\n\
         \x20   multi    REG_MULTI_SZ    one\\0two\n\
         \x20   dword    REG_DWORD    0xd3d\n\
         \x20   dwordbe    REG_DWORD_BIG_ENDIAN    0x1\n\
         \x20   qword    REG_QWORD    0xffffffffffffffff\n\
         \x20   bin    REG_BINARY    00FF10\n\
         \x20   none    REG_NONE    \n\
         \x20   link    REG_LINK    \\Registry\\Machine\\X\n\
         \x20   reslist    REG_RESOURCE_LIST    0102\n\
         \x20   fullres    REG_FULL_RESOURCE_DESCRIPTOR    03\n\
         \x20   reqs    REG_RESOURCE_REQUIREMENTS_LIST    04\n\
         \x20   sep    REG_MULTI_SZ    a\\0b\n\
         \x20   (Default)    REG_SZ    default\n\n"
    );
    let o = gw(&["hive", "dump", &h, k]);
    let dump = stdout(&o);
    assert!(
        dump.contains("\"value\":\"dwordbe\",\"type\":5,\"data\":\"00000001\""),
        "{dump}"
    );
    assert!(
        dump.contains("\"value\":\"link\",\"type\":6,\"data\":\"5c005200"),
        "{dump}"
    );
    // Overwriting needs /f; bad data is refused before anything is written.
    assert_eq!(
        gw(&["reg", "--hive", &h, "add", k, "/v", "sz", "/d", "x"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        gw(&[
            "reg",
            "--hive",
            &h,
            "add",
            k,
            "/v",
            "d2",
            "/t",
            "REG_DWORD",
            "/d",
            "nope",
            "/f"
        ])
        .status
        .code(),
        Some(2)
    );
    let o = gw(&["reg", "--hive", &h, "query", k, "/v", "dword"]);
    assert_eq!(
        stdout(&o),
        "\nHKEY_LOCAL_MACHINE\\SYSTEM\\Software\\Test\n    dword    REG_DWORD    0xd3d\n\n"
    );
    let o = gw(&["reg", "--hive", &h, "query", "Software\\Nope"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn delete_key_trees_and_all_values() {
    let t = TempDir::new("delete");
    let h = sample(&t.0);
    let svc = "ControlSet001\\Services\\TermService";
    let o = gw(&["reg", "--hive", &h, "delete", svc, "/va", "/f"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&gw(&["hive", "ls", &h, svc])), "");
    let o = gw(&[
        "reg",
        "--hive",
        &h,
        "delete",
        "ControlSet001\\Services",
        "/f",
    ]);
    assert!(o.status.success());
    assert_eq!(
        gw(&["hive", "ls", &h, "ControlSet001\\Services"])
            .status
            .code(),
        Some(2)
    );
    // Deleting it again: it does not exist, so it is an error, and nothing is written.
    let before = std::fs::read(&h).unwrap();
    assert_eq!(
        gw(&[
            "reg",
            "--hive",
            &h,
            "delete",
            "ControlSet001\\Services",
            "/f"
        ])
        .status
        .code(),
        Some(2)
    );
    assert_eq!(
        gw(&["reg", "--hive", &h, "delete", "", "/f"]).status.code(),
        Some(2)
    );
    assert_eq!(std::fs::read(&h).unwrap(), before);
}

#[test]
fn export_then_import_restores_a_subtree() {
    let t = TempDir::new("impexp");
    let h = sample(&t.0);
    let reg = t.0.join("fw.reg");
    let policy =
        "HKLM\\BROKENSYSTEM\\ControlSet001\\Services\\SharedAccess\\Parameters\\FirewallPolicy";
    let load = format!("HKLM\\BROKENSYSTEM={h}");
    let o = gw(&[
        "reg",
        "--load",
        &load,
        "export",
        policy,
        reg.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let exported = std::fs::read(&reg).unwrap();
    assert_eq!(&exported[..2], &[0xFF, 0xFE]);
    // Exporting again onto the same file needs /y.
    assert_eq!(
        gw(&[
            "reg",
            "--load",
            &load,
            "export",
            policy,
            reg.to_str().unwrap()
        ])
        .status
        .code(),
        Some(2)
    );
    assert!(gw(&[
        "reg",
        "--load",
        &load,
        "export",
        policy,
        reg.to_str().unwrap(),
        "/y"
    ])
    .status
    .success());

    let before = stdout(&gw(&["hive", "dump", &h]));
    assert!(gw(&["reg", "--load", &load, "delete", policy, "/f"])
        .status
        .success());
    assert!(!stdout(&gw(&["hive", "dump", &h])).contains("FirewallRules"));
    let o = gw(&["reg", "--load", &load, "import", reg.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&gw(&["hive", "dump", &h])), before);

    // A UTF-8 .reg file with deletions, written by hand.
    let edit = t.0.join("edit.reg");
    std::fs::write(
        &edit,
        "Windows Registry Editor Version 5.00\r\n\r\n\
         [HKEY_LOCAL_MACHINE\\BROKENSYSTEM\\ControlSet001\\Services\\SharedAccess\\Parameters\\FirewallPolicy\\PublicProfile]\r\n\
         \"DoNotAllowExceptions\"=-\r\n\"NotThere\"=-\r\n\r\n\
         [-HKEY_LOCAL_MACHINE\\BROKENSYSTEM\\No\\Such\\Key]\r\n\r\n\
         [HKEY_LOCAL_MACHINE\\BROKENSYSTEM\\New\\Key]\r\n@=\"x\"\r\n",
    )
    .unwrap();
    let o = gw(&["reg", "--load", &load, "import", edit.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let dump = stdout(&gw(&["hive", "dump", &h]));
    assert!(!dump.contains("DoNotAllowExceptions"));
    assert!(
        dump.contains("{\"key\":\"New\\\\Key\",\"value\":\"\",\"type\":1,\"data\":\"78000000\"}")
    );
    // A syntax error names the line and writes nothing.
    std::fs::write(&edit, "Windows Registry Editor Version 5.00\n[HKEY_LOCAL_MACHINE\\BROKENSYSTEM\\X]\n\"a\"=dword:xyz\n").unwrap();
    let before = std::fs::read(&h).unwrap();
    let o = gw(&["reg", "--load", &load, "import", edit.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("line 3"), "{}", stderr(&o));
    assert_eq!(std::fs::read(&h).unwrap(), before);
}

#[test]
fn paths_outside_the_loaded_hives_are_refused() {
    let t = TempDir::new("mounts");
    let h = sample(&t.0);
    let load = format!("HKLM\\BROKENSYSTEM={h}");
    let o = gw(&["reg", "--load", &load, "query", "HKLM\\SOFTWARE\\Microsoft"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("not under a loaded hive"));
    assert_eq!(gw(&["reg", "query", "HKLM\\X"]).status.code(), Some(2));
    assert_eq!(
        gw(&["reg", "--load", "HKCU=x", "query", "HKCU"])
            .status
            .code(),
        Some(2)
    );
}
