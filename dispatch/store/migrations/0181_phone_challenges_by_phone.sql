-- Codes are limited per phone number too (whichever accounts ask): counted by number.
CREATE INDEX phone_challenges_phone ON phone_challenges (phone_hash, created_at);
