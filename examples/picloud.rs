//! PiCloud's workflow with spillframe: `call` and `map` plain functions, then `status`,
//! `join`, `result` and `kill` by job id. PiCloud's local simulator ran the same API on local
//! cores; here that is all there is until a cluster is configured.
//!
//! `cargo run --example picloud`

use std::time::Duration;

use spillframe::Session;
use spillframe::jobs::JobStatus;

// ANCHOR: functions
fn slow_square(x: u64) -> Result<u64, std::io::Error> {
    std::thread::sleep(Duration::from_millis(5));
    Ok(x * x)
}
// ANCHOR_END: functions

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let session = Session::builder().memory_limit_bytes(64 << 20).build()?;

    // ANCHOR: workflow
    // jid = cloud.call(f)
    let job = session.call(|| slow_square(12));
    // cloud.result(jid)
    println!("call: {}", job.result()?);

    // jids = cloud.map(f, items)
    let squares = session.map(0..200u64, slow_square);
    let id = squares.id();
    // cloud.status(jid)
    if let Some(info) = session.job(id) {
        println!(
            "{} is {} ({} of {:?} items)",
            info.id, info.status, info.progress.done, info.progress.total
        );
    }
    // cloud.join(jid, timeout)
    let status = squares.join(Some(Duration::from_secs(30)));
    assert_eq!(status, JobStatus::Done);
    let values = squares.result()?;
    println!("map: {} results, last {}", values.len(), values[199]);

    // cloud.kill(jid)
    let long = session.map(0..100_000u64, slow_square);
    std::thread::sleep(Duration::from_millis(50));
    session.kill(long.id());
    println!(
        "killed: {} after {} items",
        long.join(None),
        long.progress().done
    );
    // ANCHOR_END: workflow

    // A failing item fails the job with an error naming it.
    let failing = session.map(0..10u64, |x| {
        if x == 3 {
            Err(std::io::Error::other("no data for item"))
        } else {
            Ok(x)
        }
    });
    if let Err(e) = failing.result() {
        println!("error: {e}");
    }
    Ok(())
}
