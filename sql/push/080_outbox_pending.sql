-- The order outbox as the event trigger polls it: how many events wait, and the newest one's id (the trigger
-- fires once per new id, not once per poll).
-- Params: none.
SELECT COUNT(*) AS pending, MAX(id) AS max_id
FROM order_outbox
WHERE state = 'pending';
