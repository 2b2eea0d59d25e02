//! Edits and safe saves.

mod common;

use std::path::{Path, PathBuf};

use common::Snapshot;
use guestwall_regf::build::{build_hive, reg_sz, BuildOptions, KeySpec};
use guestwall_regf::data::{REG_BINARY, REG_DWORD, REG_SZ};
use guestwall_regf::save::{edit_file, SaveOptions};
use guestwall_regf::write::{Edit, HiveMut};
use guestwall_regf::{DataStorage, Error, Hive, ListKind};

fn set(key: &str, name: &str, t: u32, data: impl Into<Vec<u8>>) -> Edit {
    Edit::SetValue {
        key: key.into(),
        name: name.into(),
        data_type: t,
        data: data.into(),
    }
}
fn create(key: &str) -> Edit {
    Edit::CreateKey { key: key.into() }
}
fn del_key(key: &str) -> Edit {
    Edit::DeleteKey { key: key.into() }
}
fn del_value(key: &str, name: &str) -> Edit {
    Edit::DeleteValue {
        key: key.into(),
        name: name.into(),
    }
}

fn base() -> Hive {
    let spec = KeySpec::new("")
        .subkey(
            KeySpec::new("A")
                .value("v", REG_SZ, reg_sz("hello"))
                .subkey(KeySpec::new("B")),
        )
        .subkey(KeySpec::new("Z"));
    Hive::from_bytes(build_hive(&spec, &BuildOptions::default()).unwrap()).unwrap()
}

/// Applies edits in memory and re-reads the result, checking it against the snapshot model.
fn edited(hive: &Hive, edits: &[Edit]) -> Hive {
    let mut m = HiveMut::new(hive).unwrap();
    let mut model = Snapshot::of(hive).unwrap();
    for e in edits {
        m.apply(e).unwrap();
        model.apply(e).unwrap();
    }
    let out = Hive::from_bytes(m.finish(7).unwrap().to_vec()).unwrap();
    out.check_all().unwrap();
    out.cell_stats().unwrap();
    model.verify(&out).unwrap();
    out
}

fn data(h: &Hive, key: &str, name: &str) -> (u32, Vec<u8>) {
    let v = h.key(key).unwrap().value(name).unwrap().unwrap();
    (v.data_type(), v.data().unwrap().into_owned())
}

#[test]
fn values_grow_and_shrink_across_every_storage_form() {
    let h = base();
    let sizes = [
        0usize, 3, 4, 5, 100, 16_344, 16_345, 40_000, 16_344, 4, 70_000, 2,
    ];
    let mut cur = h;
    for (i, &n) in sizes.iter().enumerate() {
        let bytes: Vec<u8> = (0..n).map(|j| (i + j) as u8).collect();
        cur = edited(&cur, &[set("A", "v", REG_BINARY, bytes.clone())]);
        assert_eq!(data(&cur, "a", "V"), (REG_BINARY, bytes), "size {n}");
        let storage = cur
            .key("A")
            .unwrap()
            .value("v")
            .unwrap()
            .unwrap()
            .storage()
            .unwrap();
        let want = match n {
            0 => matches!(storage, DataStorage::Empty | DataStorage::Inline),
            1..=4 => storage == DataStorage::Inline,
            5..=16_344 => matches!(storage, DataStorage::Cell(_)),
            _ => matches!(storage, DataStorage::BigData(..)),
        };
        assert!(want, "size {n}: {storage:?}");
    }
    // Only the edited value's cells changed hands: nothing leaked into allocated space.
    let stats = cur.cell_stats().unwrap();
    assert!(stats.allocated < 40, "{stats:?}");
}

#[test]
fn freed_cells_are_reused_and_merged() {
    let h = base();
    let h1 = edited(&h, &[set("A", "big", REG_BINARY, vec![1u8; 3000])]);
    let size1 = h1.base_block().hbins_size;
    // Delete and set again: the freed 3000 bytes are reused, the file does not grow.
    let h2 = edited(
        &h1,
        &[
            del_value("A", "big"),
            set("A", "big2", REG_BINARY, vec![2u8; 3000]),
        ],
    );
    assert_eq!(h2.base_block().hbins_size, size1);
    // Freeing neighbours leaves one merged free cell, not many small ones.
    let h3 = edited(&h2, &[del_value("A", "big2")]);
    let free_before = HiveMut::new(&h2).unwrap().free_cells();
    let free_after = HiveMut::new(&h3).unwrap().free_cells();
    assert!(
        free_after <= free_before + 1,
        "{free_before} -> {free_after}"
    );
    // A value larger than any free cell appends a bin.
    let h4 = edited(&h3, &[set("A", "huge", REG_BINARY, vec![3u8; 9000])]);
    assert!(h4.base_block().hbins_size > size1);
    assert_eq!(h4.bins().bins().len(), h3.bins().bins().len() + 1);
}

#[test]
fn new_keys_share_the_parent_security_and_keep_windows_order() {
    let h = base();
    let before = h.key("A").unwrap().security().unwrap().ref_count;
    let h = edited(
        &h,
        &[
            create("A\\m"),
            create("A\\Ä"),
            create("A\\a"),
            create("A\\Z\\deep\\er"),
        ],
    );
    let a = h.key("A").unwrap();
    let names: Vec<String> = a
        .subkeys()
        .unwrap()
        .iter()
        .map(|k| k.name().to_string_lossy())
        .collect();
    assert_eq!(names, ["a", "B", "m", "Z", "Ä"]);
    let sec = h.key("A\\Z\\deep\\er").unwrap().security().unwrap();
    assert_eq!(sec.cell, a.security().unwrap().cell);
    assert_eq!(sec.ref_count, before + 6);
    // lh hashes are right: every element's hash is the hash of its key's name.
    let list = h.cell(a.subkey_list_cell()).unwrap();
    assert_eq!(&list[..2], b"lh");
    for i in 0..5 {
        let o = 4 + 8 * i;
        let cell = u32::from_le_bytes(list[o..o + 4].try_into().unwrap());
        let hash = u32::from_le_bytes(list[o + 4..o + 8].try_into().unwrap());
        let k = guestwall_regf::Key::new(&h, cell).unwrap();
        assert_eq!(hash, k.name().lh_hash());
    }
    // Creating what exists changes nothing.
    let again = edited(&h, &[create("a\\M")]);
    assert_eq!(Snapshot::of(&again).unwrap(), Snapshot::of(&h).unwrap());
}

#[test]
fn large_subkey_lists_split_under_an_index_root_and_shrink_back() {
    let h = base();
    let edits: Vec<Edit> = (0..1500).map(|i| create(&format!("Z\\k{i:05}"))).collect();
    let h = edited(&h, &edits);
    let z = h.key("Z").unwrap();
    assert_eq!(z.subkey_count(), 1500);
    assert_eq!(&h.cell(z.subkey_list_cell()).unwrap()[..2], b"ri");
    assert!(h.find_key("z\\K01499").unwrap().is_some());
    let edits: Vec<Edit> = (0..1400).map(|i| del_key(&format!("Z\\k{i:05}"))).collect();
    let h = edited(&h, &edits);
    let z = h.key("Z").unwrap();
    assert_eq!(z.subkey_count(), 100);
    assert_eq!(&h.cell(z.subkey_list_cell()).unwrap()[..2], b"lh");
    let _ = ListKind::Ri;
}

#[test]
fn deleting_a_tree_frees_its_cells_and_security_references() {
    let h = base();
    let grown = edited(
        &h,
        &[
            create("A\\B\\C\\D"),
            set("A\\B\\C", "x", REG_BINARY, vec![9u8; 20_000]),
            set("A\\B\\C\\D", "y", REG_DWORD, 5u32.to_le_bytes()),
        ],
    );
    let refs = grown.root().unwrap().security().unwrap().ref_count;
    let allocated = grown.cell_stats().unwrap().allocated;
    let pruned = edited(&grown, &[del_key("a\\b")]);
    assert!(pruned.find_key("A\\B").unwrap().is_none());
    assert_eq!(
        pruned.root().unwrap().security().unwrap().ref_count,
        refs - 3
    );
    let stats = pruned.cell_stats().unwrap();
    assert!(
        stats.allocated < allocated - 8,
        "{} -> {}",
        allocated,
        stats.allocated
    );
    // The root cannot be deleted; missing keys and values are errors.
    let mut m = HiveMut::new(&pruned).unwrap();
    assert!(m.apply(&del_key("")).is_err());
    assert!(matches!(
        m.apply(&del_key("nope")),
        Err(Error::KeyNotFound { .. })
    ));
    assert!(matches!(
        m.apply(&del_value("A", "nope")),
        Err(Error::ValueNotFound { .. })
    ));
}

#[test]
fn a_security_cell_nobody_uses_is_unlinked_and_freed() {
    // Give key Z its own security cell by hand, then delete Z.
    let h = base();
    let mut bytes = h.bytes().to_vec();
    let root_sk = h.root().unwrap().security_cell();
    let sk_data = h.cell(root_sk).unwrap().to_vec();
    // Append a second sk cell in a new bin: [sk, flink=root, blink=root, refs=1, ...].
    let start = h.base_block().hbins_size;
    let mut bin = vec![0u8; 4096];
    bin[..4].copy_from_slice(b"hbin");
    bin[4..8].copy_from_slice(&start.to_le_bytes());
    bin[8..12].copy_from_slice(&4096u32.to_le_bytes());
    let cell = start + 32;
    let size = ((sk_data.len() + 4).div_ceil(8) * 8) as u32;
    bin[32..36].copy_from_slice(&(size as i32).wrapping_neg().to_le_bytes());
    bin[36..36 + sk_data.len()].copy_from_slice(&sk_data);
    bin[36 + 4..36 + 8].copy_from_slice(&root_sk.to_le_bytes());
    bin[36 + 8..36 + 12].copy_from_slice(&root_sk.to_le_bytes());
    bin[36 + 12..36 + 16].copy_from_slice(&1u32.to_le_bytes());
    let rest = 4096 - 32 - size;
    bin[32 + size as usize..36 + size as usize].copy_from_slice(&rest.to_le_bytes());
    bytes.extend_from_slice(&bin);
    bytes[40..44].copy_from_slice(&(start + 4096).to_le_bytes());
    // Link it into the root's list and point Z at it.
    let at = |c: u32, f: usize| 4096 + c as usize + 4 + f;
    bytes[at(root_sk, 4)..at(root_sk, 8)].copy_from_slice(&cell.to_le_bytes());
    bytes[at(root_sk, 8)..at(root_sk, 12)].copy_from_slice(&cell.to_le_bytes());
    let z = h.key("Z").unwrap().cell();
    bytes[at(z, 44)..at(z, 48)].copy_from_slice(&cell.to_le_bytes());
    let root_refs = u32::from_le_bytes(bytes[at(root_sk, 12)..at(root_sk, 16)].try_into().unwrap());
    bytes[at(root_sk, 12)..at(root_sk, 16)].copy_from_slice(&(root_refs - 1).to_le_bytes());
    let c = guestwall_regf::checksum(&bytes[..508]);
    bytes[508..512].copy_from_slice(&c.to_le_bytes());
    let h = Hive::from_bytes(bytes).unwrap();
    assert_eq!(h.key("Z").unwrap().security().unwrap().cell, cell);

    let out = edited(&h, &[del_key("Z")]);
    // The root's sk is alone in the list again and the other one is free.
    let root = out.root().unwrap().security().unwrap();
    let d = out.cell(root.cell).unwrap();
    assert_eq!(u32::from_le_bytes(d[4..8].try_into().unwrap()), root.cell);
    assert_eq!(u32::from_le_bytes(d[8..12].try_into().unwrap()), root.cell);
    assert!(
        out.cell(cell).is_err(),
        "the unused security cell is still allocated"
    );
}

// ----- saving -----

struct Tmp(PathBuf);
impl Tmp {
    fn new(tag: &str) -> Tmp {
        let d = std::env::temp_dir().join(format!("guestwall-write-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Tmp(d)
    }
    fn files(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}
impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn copy_into(dir: &Path, src: &Path, name: &str) -> PathBuf {
    let to = dir.join(name);
    std::fs::copy(src, &to).unwrap();
    let mut p = std::fs::metadata(&to).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    p.set_readonly(false);
    std::fs::set_permissions(&to, p).unwrap();
    to
}

#[test]
fn save_backs_up_writes_atomically_and_verifies() {
    let t = Tmp::new("save");
    let path = t.0.join("SYSTEM");
    std::fs::write(&path, base().bytes()).unwrap();
    let original = std::fs::read(&path).unwrap();
    let r = edit_file(
        &path,
        &[set("A\\B", "n", REG_DWORD, 3389u32.to_le_bytes())],
        &SaveOptions::default(),
    )
    .unwrap();
    let backup = r.backup.clone().unwrap();
    assert!(backup
        .file_name()
        .unwrap()
        .to_string_lossy()
        .starts_with("SYSTEM.guestwall-backup-20"));
    assert_eq!(std::fs::read(&backup).unwrap(), original);
    let h = Hive::open(&path).unwrap();
    assert_eq!(
        data(&h, "A\\B", "n"),
        (REG_DWORD, 3389u32.to_le_bytes().to_vec())
    );
    assert!(!h.base_block().is_dirty());
    assert_eq!(h.base_block().primary_seq, 2);
    assert!(r.verified_keys >= 4);
    // No temporary files are left, only the hive, its backup and the operation history.
    assert_eq!(t.files().len(), 3, "{:?}", t.files());
    assert!(t.files().contains(&".guestwall-history".to_string()));

    // A second save in the same second gets its own backup; the first is never replaced.
    let r2 = edit_file(&path, &[del_value("A\\B", "n")], &SaveOptions::default()).unwrap();
    assert_ne!(r2.backup, r.backup);
    assert_eq!(std::fs::read(&backup).unwrap(), original);

    // Edits that change nothing write nothing.
    let r3 = edit_file(&path, &[create("A\\B")], &SaveOptions::default()).unwrap();
    assert!(r3.unchanged && r3.backup.is_none());
    assert_eq!(t.files().len(), 4, "hive, history, two backups");

    // Dry runs verify but write nothing.
    let before = std::fs::read(&path).unwrap();
    let r4 = edit_file(
        &path,
        &[create("New")],
        &SaveOptions {
            dry_run: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(!r4.unchanged && r4.backup.is_none());
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn failed_edits_and_unreadable_hives_write_nothing() {
    let t = Tmp::new("refuse");
    let path = t.0.join("SYSTEM");
    std::fs::write(&path, base().bytes()).unwrap();
    let e = edit_file(&path, &[del_value("A", "missing")], &SaveOptions::default()).unwrap_err();
    assert!(matches!(e, Error::ValueNotFound { .. }));
    assert_eq!(t.files(), ["SYSTEM"]);

    // A hive with a broken cell somewhere (here: a value list pointing at a free cell).
    let h = base();
    let mut bytes = h.bytes().to_vec();
    let a = h.key("A").unwrap();
    let list = a.value_list_cell();
    bytes[4096 + list as usize..4096 + list as usize + 4].copy_from_slice(&16u32.to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let e = edit_file(&path, &[create("New")], &SaveOptions::default()).unwrap_err();
    assert!(e.to_string().contains("cannot be read completely"), "{e}");
    assert_eq!(t.files(), ["SYSTEM"]);
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

#[test]
fn dirty_hives_are_recovered_first_and_their_logs_moved_aside() {
    let Some(c) = common::corpus() else { return };
    let t = Tmp::new("dirty");
    let src = c.join("yarp/NewDirtyHive1");
    let path = copy_into(&t.0, &src.join("NewDirtyHive"), "NewDirtyHive");
    copy_into(&t.0, &src.join("NewDirtyHive.LOG1"), "NewDirtyHive.LOG1");
    copy_into(&t.0, &src.join("NewDirtyHive.LOG2"), "NewDirtyHive.LOG2");
    let r = edit_file(&path, &[create("Key3\\added")], &SaveOptions::default()).unwrap();
    assert!(r.recovered_from_logs);
    assert_eq!(r.logs_moved.len(), 2);
    let files = t.files();
    assert!(
        !files
            .iter()
            .any(|f| f == "NewDirtyHive.LOG1" || f == "NewDirtyHive.LOG2"),
        "{files:?}"
    );
    assert_eq!(
        files
            .iter()
            .filter(|f| f.contains(".guestwall-backup-"))
            .count(),
        3,
        "{files:?}"
    );
    // The saved hive is clean, holds the recovered content plus the edit, and its sequence
    // number is above every log entry's (the logs went up to 5).
    let h = Hive::open(&path).unwrap();
    assert!(!h.primary_base_block().is_dirty());
    assert!(h.base_block().primary_seq > 5);
    assert!(h.find_key("Key3\\Key3_3").unwrap().is_some());
    assert!(h.find_key("Key3\\added").unwrap().is_some());
    let windows = Hive::open(src.join("RecoveredHive_Windows10")).unwrap();
    let mut expect = Snapshot::of(&windows).unwrap();
    expect.apply(&create("Key3\\added")).unwrap();
    expect.verify(&h).unwrap();
}

#[test]
fn dirty_hives_without_logs_are_refused_unless_allowed() {
    let t = Tmp::new("dirtynolog");
    let path = t.0.join("SYSTEM");
    let mut bytes = base().bytes().to_vec();
    bytes[4..8].copy_from_slice(&9u32.to_le_bytes());
    let c = guestwall_regf::checksum(&bytes[..508]);
    bytes[508..512].copy_from_slice(&c.to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let e = edit_file(&path, &[create("New")], &SaveOptions::default()).unwrap_err();
    assert!(e.to_string().contains("dirty"), "{e}");
    assert_eq!(t.files(), ["SYSTEM"]);
    let r = edit_file(
        &path,
        &[create("New")],
        &SaveOptions {
            allow_dirty: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(r.sequence, 10);
    assert!(!Hive::open(&path).unwrap().base_block().is_dirty());
}

#[test]
fn clean_hive_logs_stay_and_the_sequence_number_passes_them() {
    let t = Tmp::new("cleanlogs");
    let path = t.0.join("SYSTEM");
    std::fs::write(&path, base().bytes()).unwrap();
    // A stale new-format log whose base block claims sequence 40.
    let mut log = base().bytes()[..512].to_vec();
    log[4..8].copy_from_slice(&40u32.to_le_bytes());
    log[8..12].copy_from_slice(&40u32.to_le_bytes());
    log[28..32].copy_from_slice(&6u32.to_le_bytes());
    let c = guestwall_regf::checksum(&log[..508]);
    log[508..512].copy_from_slice(&c.to_le_bytes());
    std::fs::write(t.0.join("SYSTEM.LOG1"), &log).unwrap();
    let r = edit_file(&path, &[create("New")], &SaveOptions::default()).unwrap();
    assert!(r.logs_moved.is_empty());
    assert_eq!(r.sequence, 41);
    assert!(t.files().contains(&"SYSTEM.LOG1".to_string()));
}

#[test]
fn edited_hives_read_the_same_in_hivex_and_regipy() {
    let t = Tmp::new("peers");
    let path = t.0.join("SYSTEM");
    std::fs::write(&path, base().bytes()).unwrap();
    let mut edits = vec![
        create("Services\\Ünïcödé Ключ"),
        set(
            "Services\\Ünïcödé Ключ",
            "Значение",
            REG_SZ,
            reg_sz("данные"),
        ),
        set("A", "dword", REG_DWORD, 7u32.to_le_bytes()),
        set("A", "big", REG_BINARY, vec![0x5A; 50_000]),
        set(
            "A",
            "multi",
            guestwall_regf::data::REG_MULTI_SZ,
            guestwall_regf::build::reg_multi_sz(&["x", "yz"]),
        ),
        set("A\\B", "", REG_SZ, reg_sz("default")),
        del_value("A", "v"),
    ];
    edits.extend((0..1200).map(|i| create(&format!("Z\\sub{i}"))));
    edit_file(&path, &edits, &SaveOptions::default()).unwrap();
    common::assert_peers_agree(&path);
    let edits: Vec<Edit> = (0..1150)
        .map(|i| del_key(&format!("Z\\sub{i}")))
        .chain([set("A", "big", REG_BINARY, vec![1; 10])])
        .collect();
    edit_file(&path, &edits, &SaveOptions::default()).unwrap();
    common::assert_peers_agree(&path);
}

#[test]
fn an_edit_copy_is_of_the_hive_read_even_when_its_file_was_replaced_since() {
    let t = Tmp::new("replaced");
    let path = t.0.join("SYSTEM");
    std::fs::write(&path, base().bytes()).unwrap();
    let read = Hive::open(&path).unwrap();
    // Another hive renamed over the file after it was read.
    // (Bigger than the first, so that a view of it would cover the hive read.)
    let other =
        KeySpec::new("").subkey(KeySpec::new("Other").value("big", REG_BINARY, vec![7u8; 40_000]));
    let other = build_hive(
        &other,
        &BuildOptions {
            sequence: 40,
            ..BuildOptions::default()
        },
    )
    .unwrap();
    let next = t.0.join("SYSTEM.next");
    std::fs::write(&next, &other).unwrap();
    std::fs::rename(&next, &path).unwrap();
    let mut m = HiveMut::new(&read).unwrap();
    m.apply(&create("A\\New")).unwrap();
    let out = Hive::from_bytes(m.finish(9).unwrap().to_vec()).unwrap();
    assert!(out.find_key("A\\B").unwrap().is_some());
    assert!(out.find_key("A\\New").unwrap().is_some());
    assert!(out.find_key("Other").unwrap().is_none());
}
