-- Every intake referenced its tag, its precinct and its citizen through foreign keys,
-- and PostgreSQL checks a foreign key by locking the referenced row (FOR KEY SHARE):
-- every alarm wrote a lock onto the row of, say, 'robbery' and of its precinct, and
-- concurrent alarms turned those locks into MultiXacts.  Those few rows were the
-- hottest in the database, written by every intake, and the checks were a fifth of
-- PostgreSQL's CPU per alarm.
--
-- What the keys guaranteed is kept another way.  Tags, precincts and citizens are
-- never deleted (a tag or precinct is deactivated, a citizen kept for the record), and
-- their keys never change: both are now refused by triggers, so a code that was valid
-- when written stays valid.  Intake writes only a tag it has just read as active, a
-- precinct from the index loaded from this table and the citizen it has just read;
-- a transfer checks its precinct.  Keys between rows written together (report ->
-- incident, event -> incident) stay.

ALTER TABLE incidents
    DROP CONSTRAINT incidents_tag_fkey,
    DROP CONSTRAINT incidents_precinct_code_fkey,
    DROP CONSTRAINT incidents_citizen_id_fkey;
ALTER TABLE reports DROP CONSTRAINT reports_citizen_id_fkey;

CREATE FUNCTION refuse_reference_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION '% rows are never deleted (deactivate instead)', TG_TABLE_NAME
            USING ERRCODE = 'restrict_violation';
    END IF;
    RAISE EXCEPTION 'the key of a % row never changes', TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END $$;

CREATE TRIGGER tags_never_deleted BEFORE DELETE ON tags
    FOR EACH ROW EXECUTE FUNCTION refuse_reference_change();
CREATE TRIGGER tags_key_kept BEFORE UPDATE OF code ON tags
    FOR EACH ROW WHEN (OLD.code IS DISTINCT FROM NEW.code)
    EXECUTE FUNCTION refuse_reference_change();
CREATE TRIGGER precincts_never_deleted BEFORE DELETE ON precincts
    FOR EACH ROW EXECUTE FUNCTION refuse_reference_change();
CREATE TRIGGER precincts_key_kept BEFORE UPDATE OF code ON precincts
    FOR EACH ROW WHEN (OLD.code IS DISTINCT FROM NEW.code)
    EXECUTE FUNCTION refuse_reference_change();
CREATE TRIGGER citizens_never_deleted BEFORE DELETE ON citizens
    FOR EACH ROW EXECUTE FUNCTION refuse_reference_change();
CREATE TRIGGER citizens_key_kept BEFORE UPDATE OF id ON citizens
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id)
    EXECUTE FUNCTION refuse_reference_change();
