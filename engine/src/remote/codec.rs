//! Fragments on the wire: datafusion-proto physical plans whose leaf is a scan of "the
//! partition the request names".
//!
//! Every other node is encoded by datafusion-proto itself, so driver and peers must run the
//! same spillframe build (the protocol's hello carries the version).

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::common::{DataFusionError, not_impl_err};
use datafusion::execution::TaskContext;
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties as _};
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use futures::TryStreamExt as _;
use spillframe_spill::{PartitionId, PartitionStore};

use crate::error::{Error, Result};
use crate::session::Session;
use crate::stored::{StoreScanExec, StoredPartitions};

/// Marks the encoded leaf: a scan of the partition the request names.
const LEAF_TAG: &[u8; 4] = b"SFPS";

/// Encodes on the driver: the fragment's [`StoreScanExec`] leaf becomes its projection only.
#[derive(Debug)]
struct DriverCodec;

impl PhysicalExtensionCodec for DriverCodec {
    fn try_decode(
        &self,
        _buf: &[u8],
        _inputs: &[Arc<dyn ExecutionPlan>],
        _ctx: &TaskContext,
        _proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> datafusion::common::Result<Arc<dyn ExecutionPlan>> {
        not_impl_err!("the driver does not decode fragments")
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        _proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> datafusion::common::Result<()> {
        let Some(scan) = node.downcast_ref::<StoreScanExec>() else {
            return not_impl_err!("{} cannot run on a peer", node.name());
        };
        buf.extend_from_slice(LEAF_TAG);
        match scan.projection() {
            None => buf.push(0),
            Some(p) => {
                buf.push(1);
                buf.extend_from_slice(&(p.len() as u32).to_le_bytes());
                for i in p {
                    buf.extend_from_slice(&(*i as u32).to_le_bytes());
                }
            }
        }
        Ok(())
    }
}

/// Decodes on a peer: the leaf becomes a scan of partition `id` of the peer's store.
#[derive(Debug)]
struct PeerCodec {
    store: PartitionStore,
    id: PartitionId,
}

impl PhysicalExtensionCodec for PeerCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        _inputs: &[Arc<dyn ExecutionPlan>],
        _ctx: &TaskContext,
        _proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> datafusion::common::Result<Arc<dyn ExecutionPlan>> {
        let bad = || DataFusionError::Plan("malformed partition scan in a fragment".into());
        let rest = buf.strip_prefix(LEAF_TAG).ok_or_else(bad)?;
        let projection = match rest.split_first() {
            Some((0, [])) => None,
            Some((1, rest)) => {
                let (n, rest) = rest.split_first_chunk::<4>().ok_or_else(bad)?;
                let n = u32::from_le_bytes(*n) as usize;
                if rest.len() != n * 4 {
                    return Err(bad());
                }
                Some(
                    rest.chunks_exact(4)
                        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as usize)
                        .collect(),
                )
            }
            _ => return Err(bad()),
        };
        let schema = self
            .store
            .schema(self.id)
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let parts = StoredPartitions::borrowed(self.store.clone(), schema, vec![vec![self.id]]);
        Ok(Arc::new(StoreScanExec::new(Arc::new(parts), projection)?))
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        _buf: &mut Vec<u8>,
        _proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> datafusion::common::Result<()> {
        not_impl_err!("a peer does not encode fragments ({})", node.name())
    }
}

/// Serializes a fragment (a plan over one [`StoreScanExec`]) for a peer.
pub fn encode_fragment(fragment: &Arc<dyn ExecutionPlan>) -> datafusion::common::Result<Vec<u8>> {
    let bytes = datafusion_proto::bytes::physical_plan_to_bytes_with_extension_codec(
        Arc::clone(fragment),
        &DriverCodec,
    )?;
    Ok(bytes.to_vec())
}

/// Runs a fragment from [`encode_fragment`] over partition `id` of `session`'s store (on a
/// peer), and returns its output schema and batches.
pub async fn run_fragment(
    session: &Session,
    id: PartitionId,
    fragment: &[u8],
) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let codec = PeerCodec {
        store: session.store().clone(),
        id,
    };
    let task = session.context().task_ctx();
    let plan = datafusion_proto::bytes::physical_plan_from_bytes_with_extension_codec(
        fragment, &task, &codec,
    )
    .map_err(|e| Error::InvalidArgument(format!("cannot decode a plan fragment: {e}")))?;
    let n = plan.output_partitioning().partition_count();
    if n != 1 {
        return Err(Error::InvalidArgument(format!(
            "a plan fragment must have one output partition, this one has {n}"
        )));
    }
    let schema = plan.schema();
    let batches: Vec<RecordBatch> = plan.execute(0, task)?.try_collect().await?;
    Ok((schema, batches))
}

/// [`run_fragment`] for callers outside async code (a peer's blocking worker).
pub fn run_fragment_blocking(
    session: &Session,
    id: PartitionId,
    fragment: &[u8],
) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    session.block_on(run_fragment(session, id, fragment))
}
