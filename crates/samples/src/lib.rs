//! Sample Windows hives built from scratch.
//!
//! A fresh clone has no corpus of real hives, so the demo and the tests that must always run
//! use these. [`broken_rdp_system`] is the SYSTEM hive of a Windows Server 2019 VM that
//! "boots to the logon screen but RDP times out" for both reasons Microsoft's article names:
//! the Remote Desktop rules are disabled, and the Public profile blocks all inbound traffic.
//! The keys, value names, types and rule strings are those Windows writes.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use guestwall_regf::build::{build_hive, reg_sz, BuildError, BuildOptions, KeySpec};
use guestwall_regf::data::{REG_DWORD, REG_EXPAND_SZ, REG_SZ};

/// Path of the local firewall policy store under a control set.
pub const FIREWALL_POLICY: &str = "Services\\SharedAccess\\Parameters\\FirewallPolicy";

fn dword(v: u32) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

/// The built-in Remote Desktop rules of Windows Server 2019 (schema v2.29), by rule id,
/// with `Active` set as given.
pub fn remote_desktop_rules(active: bool) -> Vec<(&'static str, String)> {
    let a = if active { "TRUE" } else { "FALSE" };
    vec![
        (
            "RemoteDesktop-UserMode-In-TCP",
            format!("v2.29|Action=Allow|Active={a}|Dir=In|Protocol=6|LPort=3389|App=%SystemRoot%\\system32\\svchost.exe|Svc=termservice|Name=@FirewallAPI.dll,-28775|Desc=@FirewallAPI.dll,-28756|EmbedCtxt=@FirewallAPI.dll,-28752|"),
        ),
        (
            "RemoteDesktop-UserMode-In-UDP",
            format!("v2.29|Action=Allow|Active={a}|Dir=In|Protocol=17|LPort=3389|App=%SystemRoot%\\system32\\svchost.exe|Svc=termservice|Name=@FirewallAPI.dll,-28776|Desc=@FirewallAPI.dll,-28777|EmbedCtxt=@FirewallAPI.dll,-28752|"),
        ),
        (
            "RemoteDesktop-Shadow-In-TCP",
            format!("v2.29|Action=Allow|Active={a}|Dir=In|Protocol=6|App=%SystemRoot%\\system32\\RdpSa.exe|Name=@FirewallAPI.dll,-28778|Desc=@FirewallAPI.dll,-28779|EmbedCtxt=@FirewallAPI.dll,-28752|Edge=TRUE|Defer=App|"),
        ),
    ]
}

/// Other built-in rules a Server 2019 image carries (a few, for realism).
fn other_rules() -> Vec<(&'static str, &'static str)> {
    vec![
        ("CoreNet-IPv6-NDA-In", "v2.29|Action=Allow|Active=TRUE|Dir=In|Protocol=58|ICMP6=136:*|App=System|Name=@FirewallAPI.dll,-25020|Desc=@FirewallAPI.dll,-25020|EmbedCtxt=@FirewallAPI.dll,-25000|"),
        ("CoreNet-DHCP-In", "v2.29|Action=Allow|Active=TRUE|Dir=In|Protocol=17|LPort=68|RPort=67|App=%SystemRoot%\\system32\\svchost.exe|Svc=dhcp|Name=@FirewallAPI.dll,-25301|Desc=@FirewallAPI.dll,-25303|EmbedCtxt=@FirewallAPI.dll,-25000|"),
        ("FPS-SMB-In-TCP", "v2.29|Action=Allow|Active=FALSE|Dir=In|Protocol=6|LPort=445|App=System|Name=@FirewallAPI.dll,-28502|Desc=@FirewallAPI.dll,-28503|EmbedCtxt=@FirewallAPI.dll,-28502|"),
        ("WINRM-HTTP-In-TCP", "v2.29|Action=Allow|Active=TRUE|Dir=In|Protocol=6|Profile=Domain|Profile=Private|LPort=5985|App=System|Name=@FirewallAPI.dll,-35001|Desc=@FirewallAPI.dll,-35002|EmbedCtxt=@FirewallAPI.dll,-35002|"),
    ]
}

fn service(name: &str, display: &str, image: &str, start: u32, ty: u32) -> KeySpec {
    KeySpec::new(name)
        .value("Type", REG_DWORD, dword(ty))
        .value("Start", REG_DWORD, dword(start))
        .value("ErrorControl", REG_DWORD, dword(1))
        .value("ImagePath", REG_EXPAND_SZ, reg_sz(image))
        .value("DisplayName", REG_SZ, reg_sz(display))
}

fn profile(name: &str, block_all: bool) -> KeySpec {
    let mut k = KeySpec::new(name)
        .value("EnableFirewall", REG_DWORD, dword(1))
        .value("DisableNotifications", REG_DWORD, dword(1));
    if block_all {
        k = k.value("DoNotAllowExceptions", REG_DWORD, dword(1));
    }
    k.subkey(
        KeySpec::new("Logging")
            .value(
                "LogFilePath",
                REG_SZ,
                reg_sz("%systemroot%\\system32\\LogFiles\\Firewall\\pfirewall.log"),
            )
            .value("LogFileSize", REG_DWORD, dword(4096)),
    )
}

/// The SYSTEM hive tree of the broken sample VM (see the crate documentation).
pub fn broken_rdp_system_spec() -> KeySpec {
    system_spec(true)
}

/// The same VM in good order: Remote Desktop rules enabled, no profile blocking all inbound.
pub fn healthy_rdp_system_spec() -> KeySpec {
    system_spec(false)
}

fn system_spec(broken: bool) -> KeySpec {
    let mut root = KeySpec::new("");
    root.subkeys.push(
        KeySpec::new("Select")
            .value("Current", REG_DWORD, dword(1))
            .value("Default", REG_DWORD, dword(1))
            .value("Failed", REG_DWORD, dword(0))
            .value("LastKnownGood", REG_DWORD, dword(1)),
    );
    let cs = root.path_mut("ControlSet001");
    cs.path_mut("Control\\Terminal Server")
        .push_value("fDenyTSConnections", REG_DWORD, dword(0));
    cs.path_mut("Control\\Terminal Server\\WinStations\\RDP-Tcp")
        .push_value("PortNumber", REG_DWORD, dword(3389));
    let services = cs.path_mut("Services");
    services.subkeys.extend([
        service(
            "BFE",
            "@%SystemRoot%\\system32\\bfe.dll,-1001",
            "%systemroot%\\system32\\svchost.exe -k LocalServiceNoNetworkFirewall -p",
            2,
            0x20,
        ),
        service(
            "MpsSvc",
            "@%SystemRoot%\\system32\\FirewallAPI.dll,-23090",
            "%SystemRoot%\\system32\\svchost.exe -k LocalServiceNoNetworkFirewall -p",
            2,
            0x20,
        ),
        service(
            "TermService",
            "@%SystemRoot%\\System32\\termsrv.dll,-268",
            "%SystemRoot%\\System32\\svchost.exe -k NetworkService",
            3,
            0x20,
        ),
    ]);
    let policy = cs.path_mut(FIREWALL_POLICY);
    policy.subkeys.extend([
        profile("DomainProfile", false),
        profile("StandardProfile", false),
        profile("PublicProfile", broken),
    ]);
    let rules = policy.path_mut("FirewallRules");
    for (id, rule) in remote_desktop_rules(!broken) {
        rules.push_value(id, REG_SZ, reg_sz(&rule));
    }
    for (id, rule) in other_rules() {
        rules.push_value(id, REG_SZ, reg_sz(rule));
    }
    root
}

/// The broken sample SYSTEM hive as file bytes.
pub fn broken_rdp_system() -> Result<Vec<u8>, BuildError> {
    system_bytes(&broken_rdp_system_spec())
}

/// The healthy sample SYSTEM hive as file bytes.
pub fn healthy_rdp_system() -> Result<Vec<u8>, BuildError> {
    system_bytes(&healthy_rdp_system_spec())
}

fn system_bytes(spec: &KeySpec) -> Result<Vec<u8>, BuildError> {
    build_hive(
        spec,
        &BuildOptions {
            root_name: "ROOT".into(),
            file_name: "\\??\\C:\\Windows\\System32\\config\\SYSTEM".into(),
            ..BuildOptions::default()
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use guestwall_regf::{Hive, RegData};

    #[test]
    fn sample_reads_back_with_the_broken_settings() {
        let hive = Hive::from_bytes(broken_rdp_system().unwrap()).unwrap();
        let policy = format!("ControlSet001\\{FIREWALL_POLICY}");
        let public = hive.key(&format!("{policy}\\PublicProfile")).unwrap();
        let v = public.value("DoNotAllowExceptions").unwrap().unwrap();
        assert_eq!(
            RegData::decode(v.data_type(), &v.data().unwrap()),
            RegData::Dword(1)
        );
        let rules = hive.key(&format!("{policy}\\FirewallRules")).unwrap();
        let rdp = rules
            .value("RemoteDesktop-UserMode-In-TCP")
            .unwrap()
            .unwrap();
        let RegData::String(s) = RegData::decode(rdp.data_type(), &rdp.data().unwrap()) else {
            panic!()
        };
        assert!(s.contains("|Active=FALSE|") && s.contains("|LPort=3389|"));
        assert_eq!(rules.value_count(), 7);
    }
}

/// Building blocks for scenario hives made by editing real ones (used by the tests).
pub mod scenario {
    use guestwall_regf::build::reg_sz;
    use guestwall_regf::data::{REG_DWORD, REG_SZ};
    use guestwall_regf::save::{edit_file, SaveOptions};
    use guestwall_regf::write::Edit;
    use std::path::{Path, PathBuf};

    /// A temporary folder, removed when dropped.
    pub struct TempDir(pub PathBuf);

    impl TempDir {
        /// A fresh folder under the system's temporary directory.
        pub fn new(tag: &str) -> TempDir {
            let d = std::env::temp_dir().join(format!("guestwall-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).expect("cannot create a temporary folder");
            TempDir(d)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// The corpus's Windows 7 SYSTEM hive (`regipy/SYSTEM`) copied to `dir/SYSTEM`, made
    /// reachable on every profile (its Public RDP rule enabled), then changed by `edits`.
    /// The backup and the history entry that editing leaves are removed, so that `dir` holds
    /// the hive alone.
    pub fn win7_scenario(corpus: &Path, dir: &Path, edits: &[Edit]) -> PathBuf {
        let sys = dir.join("SYSTEM");
        std::fs::copy(corpus.join("regipy/SYSTEM"), &sys).expect("cannot copy regipy/SYSTEM");
        let mut all = vec![set_sz(
            &format!("{FW}\\FirewallRules"),
            "RemoteDesktop-In-TCP_1",
            W7_RDP_PUBLIC,
        )];
        all.extend_from_slice(edits);
        edit_file(&sys, &all, &SaveOptions::default()).expect("cannot edit the scenario hive");
        for e in std::fs::read_dir(dir)
            .expect("cannot list the folder")
            .flatten()
        {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.contains(".guestwall-backup-") || n == guestwall_regf::save::HISTORY_FILE {
                let _ = std::fs::remove_file(e.path());
            }
        }
        sys
    }

    /// The local firewall store of `ControlSet001`.
    pub const FW: &str = "ControlSet001\\Services\\SharedAccess\\Parameters\\FirewallPolicy";

    /// Windows 7's RDP rule (`RemoteDesktop-In-TCP`): Domain and Private, kernel listener.
    pub const W7_RDP: &str = "v2.10|Action=Allow|Active=TRUE|Dir=In|Protocol=6|Profile=Domain|Profile=Private|LPort=3389|App=System|Name=@FirewallAPI.dll,-28753|Desc=@FirewallAPI.dll,-28756|EmbedCtxt=@FirewallAPI.dll,-28752|";

    /// Its Public copy (`RemoteDesktop-In-TCP_1`), here enabled.
    pub const W7_RDP_PUBLIC: &str = "v2.10|Action=Allow|Active=TRUE|Dir=In|Protocol=6|Profile=Public|LPort=3389|App=System|Name=@FirewallAPI.dll,-28753|Desc=@FirewallAPI.dll,-28756|EmbedCtxt=@FirewallAPI.dll,-28752|";

    /// Sets a REG_DWORD.
    pub fn set_dword(key: &str, name: &str, v: u32) -> Edit {
        Edit::SetValue {
            key: key.into(),
            name: name.into(),
            data_type: REG_DWORD,
            data: v.to_le_bytes().to_vec(),
        }
    }

    /// Sets a REG_SZ.
    pub fn set_sz(key: &str, name: &str, v: &str) -> Edit {
        Edit::SetValue {
            key: key.into(),
            name: name.into(),
            data_type: REG_SZ,
            data: reg_sz(v),
        }
    }
}
