//! Sluice's protobuf contracts, compiled by tonic/prost from `proto/`.

/// The admin API (`sluice.admin.v1`): entities, their CRUD and the revision log.
pub mod admin {
    /// Version 1 of the admin API.
    pub mod v1 {
        #![allow(missing_docs, clippy::all)]
        tonic::include_proto!("sluice.admin.v1");
    }
}

/// The data-plane sync API (`sluice.dataplane.v1`): config deltas to nodes.
pub mod dataplane {
    /// Version 1 of the sync API.
    pub mod v1 {
        #![allow(missing_docs, clippy::all)]
        tonic::include_proto!("sluice.dataplane.v1");
    }
}

/// Terraform plugin protocol 6 (the subset the provider serves).
pub mod tfplugin6 {
    #![allow(missing_docs, clippy::all)]
    tonic::include_proto!("tfplugin6");
}

/// go-plugin's controller service (`plugin.GRPCController`).
pub mod plugin {
    #![allow(missing_docs, clippy::all)]
    tonic::include_proto!("plugin");
}

/// The admin API protos (`sluice.admin.v1`) as an encoded `FileDescriptorSet`
/// (for gRPC reflection and for walking messages by their descriptors).
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/sluice_descriptor.bin"));

/// The descriptor pool built from [`FILE_DESCRIPTOR_SET`].
pub fn descriptor_pool() -> &'static prost_reflect::DescriptorPool {
    static POOL: std::sync::OnceLock<prost_reflect::DescriptorPool> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        prost_reflect::DescriptorPool::decode(FILE_DESCRIPTOR_SET).unwrap_or_else(|e| {
            panic!("the descriptor set compiled into this binary is invalid: {e}")
        })
    })
}

pub mod condition;
pub mod entity;
pub mod facts;
pub mod names;
pub mod record_policy;
