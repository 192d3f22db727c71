-- Evidence files are shared by every attachment with the same bytes: before a failed
-- submission's files are removed, IntakeService.forget_evidence asks whether any
-- attachment refers to them.
CREATE INDEX attachments_storage_key ON attachments (storage_key);
