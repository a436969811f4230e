-- An integration key's urgency (issue 20): 'urgent' alerts page at once; 'normal' ones opened after business
-- hours page when the organization's hours start, like a caller's "normal" menu option. And the voice an
-- organization's alert summaries are spoken with (NULL: [paging] speech_voice).
ALTER TABLE integration_keys ADD COLUMN urgency TEXT NOT NULL DEFAULT 'urgent';
ALTER TABLE organizations ADD COLUMN speech_voice TEXT;
