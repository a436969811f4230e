-- Buttons on a request (issue 18 item 6): "Page again", "Escalate now", "Reassign to <person>", pressed on the web
-- (or sent to the API) and carried out by the paging task that runs the request's escalation.
--
-- The web never runs escalations: it queues the action here (and writes the timeline event naming who asked). The
-- paging task of the instance holding the request's lease (or, when nobody holds one, any instance) takes it
-- (`taken_at`, `taken_by`: each action is taken once, across instances) and feeds it to its dispatcher.
--
-- `action` is 'page_again', 'escalate' or 'reassign' (with `person_id`, the person to page); `by_actor` who asked
-- ("user:3", "person:7"), as in `request_events.actor`.

CREATE TABLE request_actions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id BIGINT NOT NULL,
    request_id BIGINT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('page_again', 'escalate', 'reassign')),
    person_id BIGINT,
    by_actor TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    taken_at BIGINT,
    taken_by TEXT,
    CHECK ((action = 'reassign') = (person_id IS NOT NULL)),
    FOREIGN KEY (org_id, request_id) REFERENCES requests (org_id, id),
    FOREIGN KEY (org_id, person_id) REFERENCES people (org_id, id)
);

CREATE INDEX request_actions_pending ON request_actions (org_id, taken_at, id);
