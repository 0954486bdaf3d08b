//! Partitions put on peers, read back, listed and dropped.

use arrow::compute::concat_batches;
use spillframe_net::InitTrust;

use super::*;

#[test]
fn partitions_round_trip_on_three_peers() {
    let dir = tempfile::tempdir().unwrap();
    let config = make_cluster(dir.path(), 3, InitTrust::Ca, "256MiB");
    let peers = start_peers(&config);
    let rt = runtime();
    rt.block_on(async {
        let mut clients = vec![];
        for i in 0..3 {
            clients.push(connect(&config, i, 7).await.unwrap());
        }
        let (schema, data) = batches(30_000);
        for (i, c) in clients.iter().enumerate() {
            assert!(c.ping().await.unwrap() < TIMEOUT);
            // Peer i gets rows [i * 1000, ...) so a mix-up would show.
            let part: Vec<_> = data.iter().map(|b| b.slice(i * 1000, 5000)).collect();
            let stored = c
                .put(i as u64 + 1, Some(format!("test part {i}")), &schema, &part)
                .await
                .unwrap();
            assert_eq!(stored.rows, 15_000);
            assert!(stored.bytes > 0);
        }
        for (i, c) in clients.iter().enumerate() {
            let (got_schema, got) = c.get(i as u64 + 1).await.unwrap();
            assert_eq!(got_schema, schema);
            let part: Vec<_> = data.iter().map(|b| b.slice(i * 1000, 5000)).collect();
            assert_eq!(
                concat_batches(&schema, &got).unwrap(),
                concat_batches(&schema, &part).unwrap()
            );
            // A partition of another id is not there, and says which peer was asked.
            let e = c.get(99).await.unwrap_err().to_string();
            assert!(
                e.contains("partition 99") && e.contains(&format!("'{}'", c.name())),
                "{e}"
            );
        }
        let status = clients[1].status().await.unwrap();
        assert_eq!(status.name, "b");
        assert_eq!(status.memory_limit, 256 << 20);
        assert_eq!(status.partitions.len(), 1);
        assert_eq!(status.partitions[0].rows, 15_000);
        assert_eq!(status.partitions[0].lineage.as_deref(), Some("test part 1"));
        assert_eq!(status.connections, 1);

        // An empty partition keeps its schema.
        clients[0].put(50, None, &schema, &[]).await.unwrap();
        let (s, b) = clients[0].get(50).await.unwrap();
        assert_eq!((s, b.len()), (schema.clone(), 0));

        assert_eq!(
            clients[0].drop_partitions(vec![1, 50, 77]).await.unwrap(),
            2
        );
        assert!(clients[0].get(1).await.is_err());
        for c in &clients {
            c.close();
        }
    });
    // Closing the connection drops the session's partitions on every peer.
    for p in &peers {
        eventually("partitions dropped after close", || {
            p.partition_count() == 0
        });
    }
    for p in peers {
        p.stop();
    }
}

#[test]
fn a_peer_spills_what_does_not_fit_its_budget() {
    let dir = tempfile::tempdir().unwrap();
    let config = make_cluster(dir.path(), 1, InitTrust::Ca, "12MiB");
    let peers = start_peers(&config);
    let rt = runtime();
    rt.block_on(async {
        let c = connect(&config, 0, 1).await.unwrap();
        let (schema, data) = batches(400_000); // about 12 MB of Arrow
        for id in 0..3 {
            c.put(id, None, &schema, &data).await.unwrap();
        }
        let status = c.status().await.unwrap();
        assert!(status.spilled_bytes > 0, "{status:?}");
        assert!(status.partition_memory <= 12 << 20, "{status:?}");
        for id in 0..3 {
            let (_, got) = c.get(id).await.unwrap();
            assert_eq!(
                concat_batches(&schema, &got).unwrap(),
                concat_batches(&schema, &data).unwrap()
            );
        }
    });
    for p in peers {
        p.stop();
    }
}
