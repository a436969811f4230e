-- Shift swaps (issue 18 item 9): an employee asks a colleague to take a shift (a give-away) or to
-- trade it for one of the colleague's (back_starts_at/back_ends_at); the colleague answers, then a
-- manager decides unless the schedule lets accepted swaps through on their own. Approval writes
-- overrides (override_id, back_override_id).
ALTER TABLE schedules ADD COLUMN swaps_need_approval BIGINT NOT NULL DEFAULT 1;

CREATE TABLE shift_swaps (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id BIGINT NOT NULL,
    schedule_id BIGINT NOT NULL,
    requester_id BIGINT NOT NULL,
    taker_id BIGINT NOT NULL,
    starts_at BIGINT NOT NULL,
    ends_at BIGINT NOT NULL,
    back_starts_at BIGINT,
    back_ends_at BIGINT,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    answered_at BIGINT,
    decided_at BIGINT,
    override_id BIGINT,
    back_override_id BIGINT,
    CHECK (starts_at < ends_at),
    CHECK (requester_id <> taker_id),
    FOREIGN KEY (org_id, schedule_id) REFERENCES schedules (org_id, id) ON DELETE CASCADE,
    FOREIGN KEY (org_id, requester_id) REFERENCES people (org_id, id),
    FOREIGN KEY (org_id, taker_id) REFERENCES people (org_id, id)
);
CREATE INDEX shift_swaps_schedule ON shift_swaps (org_id, schedule_id, status);
CREATE INDEX shift_swaps_requester ON shift_swaps (org_id, requester_id);
CREATE INDEX shift_swaps_taker ON shift_swaps (org_id, taker_id);
