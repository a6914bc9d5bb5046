-- Records a push is sending right now, or will send first (P8): members of a batch persisted but not yet applied.
-- The import leaves them alone (the push wins: its answer is applied first), and the push's diff leaves them to
-- the resume step. One definition for both directions, so neither reads export_queue's states itself.
CREATE VIEW export_in_flight AS
SELECT q.record_type, q.record_id, q.connection_id, q.batch_id
FROM export_queue q
WHERE q.state IN ('waiting', 'in_progress');
