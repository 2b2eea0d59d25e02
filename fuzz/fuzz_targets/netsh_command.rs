//! Any text as a `netsh advfirewall` command line (one word per line): parsing never panics,
//! and a command that parses produces rule strings that parse back losslessly.
#![no_main]

use guestwall_firewall::{Rule, RuleString};
use guestwall_netsh::edit::{apply_spec, matches, new_rule};
use guestwall_netsh::{parse, Command};
use libfuzzer_sys::fuzz_target;

const RDP: &str = "v2.29|Action=Allow|Active=FALSE|Dir=In|Protocol=6|LPort=3389|App=%SystemRoot%\\system32\\svchost.exe|Svc=termservice|Name=@FirewallAPI.dll,-28775|Desc=@FirewallAPI.dll,-28756|EmbedCtxt=@FirewallAPI.dll,-28752|";

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let words: Vec<String> = s.split('\n').map(String::from).collect();
    let Ok(cmd) = parse(&words) else { return };
    let rule = Rule::parse("RemoteDesktop-UserMode-In-TCP", RDP);
    match cmd {
        Command::AddRule(spec) => {
            if let Ok(s) = new_rule(&spec, (2, 31)) {
                assert_eq!(Rule::parse("x", &s).raw.to_string(), s);
            }
        }
        Command::SetRule { filter, new } => {
            let _ = matches(&rule, &filter);
            let mut raw = rule.raw.clone();
            if apply_spec(&mut raw, &new).is_ok() {
                let s = raw.to_string();
                assert_eq!(RuleString::parse(&s).to_string(), s);
            }
        }
        Command::ShowRule { filter, .. } | Command::DeleteRule(filter) => {
            let _ = matches(&rule, &filter);
        }
        _ => {}
    }
});
