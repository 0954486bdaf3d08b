//! What peers refuse: a wrong token, a foreign certificate, another protocol version,
//! garbage and oversized frames. Each refusal closes that connection only.

use bytes::BytesMut;
use spillframe_net::protocol::frame::{FrameKind, encode_frame};
use spillframe_net::protocol::message::encode_hello_with_version;
use spillframe_net::{Error, InitTrust};

use super::*;

/// A raw connection from the driver's endpoint (valid TLS), for sending arbitrary bytes.
async fn raw(config: &ClusterConfig, i: usize) -> quinn::Connection {
    let endpoint = client_endpoint(config, &config.driver).unwrap();
    let p = &config.peers[i];
    tokio::time::timeout(TIMEOUT, endpoint.connect(p.addr, &p.name).unwrap())
        .await
        .unwrap()
        .unwrap()
}

/// Sends `bytes` on a new stream and returns why the peer closed the connection.
async fn closed_after(config: &ClusterConfig, bytes: &[u8]) -> String {
    let conn = raw(config, 0).await;
    let (mut send, _recv) = conn.open_bi().await.unwrap();
    send.write_all(bytes).await.unwrap();
    let _ = send.finish();
    let e = tokio::time::timeout(TIMEOUT, conn.closed()).await.unwrap();
    e.to_string()
}

async fn still_serves(config: &ClusterConfig) {
    let c = connect(config, 0, 99).await.unwrap();
    c.ping().await.unwrap();
    c.close();
}

#[test]
fn wrong_token_and_version_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = make_cluster(dir.path(), 1, InitTrust::Ca, "64MiB");
    let peers = start_peers(&config);
    runtime().block_on(async {
        let mut bad = config.clone();
        bad.token = "not-the-cluster-token".into();
        match connect(&bad, 0, 1).await {
            Err(Error::Refused { peer, reason }) => {
                assert_eq!(peer, "a");
                assert!(reason.contains("token"), "{reason}");
            }
            Err(other) => panic!("expected a refusal, got {other}"),
            Ok(_) => panic!("a wrong token was accepted"),
        }
        let mut wire = BytesMut::new();
        encode_frame(
            FrameKind::Hello,
            &encode_hello_with_version(&hello(&config, 1), 99),
            &mut wire,
        );
        let reason = closed_after(&config, &wire).await;
        assert!(
            reason.contains(&format!(
                "version {}",
                spillframe_net::protocol::PROTOCOL_VERSION
            )) && reason.contains("version 99"),
            "{reason}"
        );
        still_serves(&config).await;
    });
    assert_eq!(peers[0].partition_count(), 0);
}

#[test]
fn garbage_and_oversized_frames_close_only_that_connection() {
    let dir = tempfile::tempdir().unwrap();
    let config = make_cluster(dir.path(), 1, InitTrust::Ca, "64MiB");
    let _peers = start_peers(&config);
    runtime().block_on(async {
        // Open a good connection first: it must survive the bad ones.
        let good = connect(&config, 0, 5).await.unwrap();

        let reason = closed_after(&config, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").await;
        assert!(reason.contains("frame"), "{reason}");

        // A frame header announcing 4 GiB: refused from the header alone.
        let reason = closed_after(&config, &[0xff, 0xff, 0xff, 0xff, b'M']).await;
        assert!(reason.contains("over the limit"), "{reason}");

        // Oversized after a good handshake.
        let conn = raw(&config, 0).await;
        let (mut send, mut recv) = conn.open_bi().await.unwrap();
        send.write_all(
            &spillframe_net::protocol::client::ClientHandshake::hello_bytes(&hello(&config, 6)),
        )
        .await
        .unwrap();
        let _ = send.finish();
        let mut reply = vec![];
        while let Some(chunk) = recv.read_chunk(1024, true).await.unwrap() {
            reply.extend_from_slice(&chunk.bytes);
        }
        assert!(!reply.is_empty());
        let (mut send, _recv) = conn.open_bi().await.unwrap();
        let len = (config.max_frame as u32 + 1).to_be_bytes();
        send.write_all(&[len[0], len[1], len[2], len[3], b'D'])
            .await
            .unwrap();
        let e = tokio::time::timeout(TIMEOUT, conn.closed()).await.unwrap();
        assert!(e.to_string().contains("over the limit"), "{e}");

        // Raw UDP garbage at the peer's port is dropped by QUIC.
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        for _ in 0..20 {
            udp.send_to(&[0x5a; 1200], config.peers[0].addr).unwrap();
        }

        good.ping().await.unwrap();
        still_serves(&config).await;
    });
}

#[test]
fn a_certificate_from_another_cluster_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let other_dir = tempfile::tempdir().unwrap();
    let config = make_cluster(dir.path(), 1, InitTrust::Ca, "64MiB");
    let other = make_cluster(other_dir.path(), 1, InitTrust::Ca, "64MiB");
    let _peers = start_peers(&config);
    runtime().block_on(async {
        // A client certificate signed by another CA, with the right token.
        let mut intruder = config.clone();
        intruder.driver = other.driver.clone();
        let e = connect(&intruder, 0, 1)
            .await
            .err()
            .expect("a foreign client certificate was accepted");
        assert!(matches!(e, Error::Peer { .. }), "{e}");
        // A server that is not the cluster's: the driver refuses it.
        let mut misled = config.clone();
        misled.peers[0].addr = other.peers[0].addr;
        let _other_peers = start_peers(&other);
        let e = connect(&misled, 0, 1)
            .await
            .err()
            .expect("a foreign server was trusted");
        assert!(
            e.to_string().contains("certificate") || e.to_string().contains("TLS"),
            "{e}"
        );
        still_serves(&config).await;
    });
}

#[test]
fn pinned_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let other_dir = tempfile::tempdir().unwrap();
    let config = make_cluster(dir.path(), 2, InitTrust::Pinned, "64MiB");
    let other = make_cluster(other_dir.path(), 1, InitTrust::Pinned, "64MiB");
    let _peers = start_peers(&config);
    runtime().block_on(async {
        for i in 0..2 {
            connect(&config, i, 3).await.unwrap().ping().await.unwrap();
        }
        let mut intruder = config.clone();
        intruder.driver = other.driver.clone();
        assert!(
            connect(&intruder, 0, 1).await.is_err(),
            "an unpinned certificate was accepted"
        );
        // Peer b's certificate is pinned, but only under b's name: presented by the server
        // at a's address it is refused.
        let mut swapped = config.clone();
        swapped.peers[0].addr = config.peers[1].addr;
        assert!(
            connect(&swapped, 0, 1).await.is_err(),
            "a certificate was accepted under another name"
        );
        still_serves(&config).await;
    });
}
