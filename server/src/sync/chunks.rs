//! Splitting a snapshot into chunks that each stay far below the 4 MiB a
//! gRPC peer decodes by default, so a gateway of any size reaches its
//! nodes; the node assembles them and applies the snapshot once.

use prost::Message;
use sluice_proto::admin::v1::Entity;

/// The most entity bytes one chunk carries (an entity larger than this
/// travels alone; the admin API's own 4 MiB limit bounds one entity).
pub const CHUNK_BYTES: usize = 1024 * 1024;

/// The entities in order, cut into runs of at most `max_bytes` encoded
/// bytes each (at least one entity per run); never empty: a snapshot of
/// nothing is one empty chunk.
pub fn split(entities: Vec<Entity>, max_bytes: usize) -> Vec<Vec<Entity>> {
    let mut chunks = vec![Vec::new()];
    let mut size = 0;
    for entity in entities {
        // The field's tag and length prefix, as `upserted` encodes it.
        let len = entity.encoded_len();
        let bytes = len + prost::length_delimiter_len(len) + 1;
        let current = chunks.last().map_or(0, Vec::len);
        if current > 0 && size + bytes > max_bytes {
            chunks.push(Vec::new());
            size = 0;
        }
        size += bytes;
        if let Some(last) = chunks.last_mut() {
            last.push(entity);
        }
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entity(id: &str, description_bytes: usize) -> Entity {
        Entity {
            id: id.into(),
            description: "x".repeat(description_bytes),
            ..Default::default()
        }
    }

    #[test]
    fn chunks_stay_under_the_limit_and_keep_the_order() {
        let entities: Vec<Entity> = (0..10).map(|i| entity(&i.to_string(), 300)).collect();
        let chunks = split(entities.clone(), 1000);
        assert!(chunks.len() > 1);
        for chunk in &chunks {
            let bytes: usize = chunk
                .iter()
                .map(|e| e.encoded_len() + prost::length_delimiter_len(e.encoded_len()) + 1)
                .sum();
            assert!(bytes <= 1000, "{bytes}");
        }
        assert_eq!(chunks.concat(), entities);
    }

    #[test]
    fn an_oversized_entity_travels_alone_and_nothing_is_one_chunk() {
        let chunks = split(
            vec![entity("a", 10), entity("big", 5000), entity("b", 10)],
            1000,
        );
        let sizes: Vec<usize> = chunks.iter().map(Vec::len).collect();
        assert_eq!(sizes, [1, 1, 1]);
        assert_eq!(split(Vec::new(), 1000), [Vec::<Entity>::new()]);
    }
}
