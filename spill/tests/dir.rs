use std::fs::{self, File};

use spillframe_spill::SpillDir;
use spillframe_spill::dir::sweep;

#[test]
fn directory_is_removed_on_drop_and_close() {
    let base = tempfile::tempdir().unwrap();
    let (dir, _) = SpillDir::create(base.path()).unwrap();
    let p = dir.path().to_path_buf();
    fs::write(p.join("a.arrow"), b"0123456789").unwrap();
    assert_eq!(dir.files().len(), 1);
    assert_eq!(dir.used_bytes(), 10);
    drop(dir);
    assert!(!p.exists());

    let (dir, _) = SpillDir::create(base.path()).unwrap();
    let p = dir.path().to_path_buf();
    dir.close().unwrap();
    assert!(!p.exists());
    assert_eq!(fs::read_dir(base.path()).unwrap().count(), 0);
}

#[test]
fn live_directories_survive_a_sweep() {
    let base = tempfile::tempdir().unwrap();
    let (a, _) = SpillDir::create(base.path()).unwrap();
    let (b, report) = SpillDir::create(base.path()).unwrap();
    assert!(report.removed.is_empty());
    assert!(a.path().exists() && b.path().exists());
    assert!(sweep(base.path()).unwrap().removed.is_empty());
}

#[test]
fn directory_of_a_dead_owner_is_swept() {
    let base = tempfile::tempdir().unwrap();
    // What a killed process leaves: a final-named directory whose lock nobody holds.
    let dead = base.path().join("spillframe-999999-1-0");
    fs::create_dir(&dead).unwrap();
    File::create(dead.join("owner.lock")).unwrap();
    fs::write(dead.join("spill-1.arrow"), vec![7u8; 4096]).unwrap();
    // Something that is not ours stays.
    let other = base.path().join("unrelated");
    fs::create_dir(&other).unwrap();

    let (_dir, report) = SpillDir::create(base.path()).unwrap();
    assert_eq!(report.removed, vec![dead.clone()]);
    assert_eq!(report.bytes_freed, 4096);
    assert!(!dead.exists());
    assert!(other.exists());
}

#[test]
fn unwritable_base_gives_an_error_naming_the_path() {
    let base = tempfile::tempdir().unwrap();
    let file = base.path().join("not-a-dir");
    fs::write(&file, b"x").unwrap();
    let err = SpillDir::create(&file.join("sub")).unwrap_err().to_string();
    assert!(err.contains("not-a-dir"), "{err}");
}
