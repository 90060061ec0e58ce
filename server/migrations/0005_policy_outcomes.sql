-- What each node's record policies did, per policy and outcome (JSON list
-- of {policy_id, outcome, shadow, count, last_message}), reported with
-- the node's status like its hop error counts.

ALTER TABLE data_plane_nodes ADD COLUMN policy_outcomes TEXT NOT NULL DEFAULT '[]';
